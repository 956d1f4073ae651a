// swift-tools-version:6.1
// libFuzzer targets for TokenGate. A package of its own, so `swift build` at the root never sees it.
// Build and run with ../scripts/fuzz (which passes -sanitize=fuzzer,address and -parse-as-library).
import PackageDescription

let package = Package(
    name: "tokengate-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    ],
    targets: [
        // The declaration of libFuzzer's LLVMFuzzerRunDriver (see its header).
        .target(name: "FuzzerDriver"),
        // The token parser: TokenVerifier, StrictJSON, Base64URL.
        .executableTarget(
            name: "FuzzToken",
            dependencies: [
                "FuzzerDriver",
                .product(name: "TokenGate", package: "main"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The Authorization and Cookie header parsing: HeaderParsing.
        .executableTarget(
            name: "FuzzHeaders",
            dependencies: [
                "FuzzerDriver",
                .product(name: "TokenGateHTTP", package: "main"),
                .product(name: "TokenGate", package: "main"),
            ]
        ),
    ]
)
