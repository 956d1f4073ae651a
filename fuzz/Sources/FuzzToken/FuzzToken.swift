// libFuzzer target over TokenGate's token parser: TokenVerifier, StrictJSON and Base64URL.
//
// The first input byte picks a mode, the rest is the payload:
//   mode 0  the rest is a token, verified as is (seeds: valid tokens, which the fuzzer mutates);
//   mode 1  the rest is `header JSON \0 payload JSON`: the harness encodes and signs it, so the
//           fuzzer reaches the claim checks behind the signature (which it could never forge);
//   mode 2  the rest is a signing input `header.payload` as text: the harness appends its HMAC;
//   mode 3  the rest goes to StrictJSON.parseObject and Base64URL.decode directly.
// Bits 2-3 pick the signing key in modes 1 and 2 (the `fuzz-kid` key, the `other key/2` key, or
// a key the verifier does not have); bit 4 picks the verifier (no audience, or audience `app`).
//
// Invariants (a violation aborts, which libFuzzer records as a crash):
//   - nothing crashes (ASan, traps, precondition failures);
//   - an accepted token has exactly three segments, at most 4096 bytes, a header of only
//     alg=HS256, typ=JWT and a kid the verifier has, and a signature segment that is exactly the
//     base64url HMAC-SHA256 of `header.payload` under THAT kid's key (recomputed here);
//   - the claims returned are the payload's, and the lifetime, iat, exp and aud rules hold;
//   - verification is deterministic: a second call, and the Substring.UTF8View overload on a
//     slice of a larger string, give the same outcome;
//   - Base64URL: decode(x) = y implies encode(y) == x (one spelling per byte string), and
//     decode(encode(y)) == y; StrictJSON: accepting implies valid UTF-8, and acceptance is
//     monotonic in maxDepth.
//
// With TOKENGATE_FUZZ_SEEDS=<dir> in the environment the binary writes its seed corpus (valid
// tokens signed with the same key, by hand and by jwt-kit through TokenIssuer) and exits.

import Crypto
import Dispatch
import FuzzerDriver
import TokenGate

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum Fixture {
    static let now: Int64 = 1_800_000_000
    static let ttl = 30
    static let leeway = 2
    static let issuer = "tokengate"
    static let kid1 = "fuzz-kid"  // base64url alphabet: the verifier's fast path
    static let kid2 = "other key/2"  // not: found by parsing the header
    static let key1 = Array("0123456789abcdef0123456789abcdef-fuzz-key-1".utf8)
    static let key2 = Array("0123456789abcdef0123456789abcdef-fuzz-key-2".utf8)
    static let key3 = Array("0123456789abcdef0123456789abcdef-not-known".utf8)
    static let keys: [String: [UInt8]] = [kid1: key1, kid2: key2]
    static let symmetricKeys = keys.mapValues { SymmetricKey(data: $0) }
    static let verifiers: [(verifier: TokenVerifier, audience: String?)] = [
        (TokenVerifier(keys: symmetricKeys, issuer: issuer, audience: nil, tokenTTL: ttl, leeway: leeway), nil),
        (TokenVerifier(keys: symmetricKeys, issuer: issuer, audience: "app", tokenTTL: ttl, leeway: leeway), "app"),
    ]
    static let signingKeys: [[UInt8]] = [key1, key2, key3, key1]
}

func violated(_ what: String, _ token: String) -> Never {
    let shown = token.utf8.count > 600 ? String(decoding: token.utf8.prefix(600), as: UTF8.self) + "…" : token
    fatalError("FuzzToken invariant violated: \(what)\n  token: \(shown.debugDescription)")
}

func mac(_ key: [UInt8], _ input: some Sequence<UInt8>) -> [UInt8] {
    Array(HMAC<SHA256>.authenticationCode(for: Array(input), using: SymmetricKey(data: key)))
}

func split(_ bytes: [UInt8], on separator: UInt8) -> [ArraySlice<UInt8>] {
    bytes.split(separator: separator, omittingEmptySubsequences: false)
}

/// What must be true of a token the verifier accepted, checked independently of its code paths.
func checkAccepted(_ token: String, _ result: VerifiedToken, audience: String?) {
    let bytes = Array(token.utf8)
    guard bytes.count <= TokenVerifier.maxTokenBytes else { violated("accepted a token over 4096 bytes", token) }
    let parts = split(bytes, on: UInt8(ascii: "."))
    guard parts.count == 3 else { violated("accepted a token with \(parts.count) segments", token) }
    guard let headerBytes = Base64URL.decode(parts[0]), let header = try? StrictJSON.parseObject(headerBytes) else {
        violated("accepted a token whose header is not base64url JSON", token)
    }
    guard Set(header.keys).isSubset(of: ["alg", "typ", "kid"]) else { violated("accepted header members \(header.keys.sorted())", token) }
    guard header["alg"] == .string("HS256") else { violated("accepted alg \(String(describing: header["alg"]))", token) }
    guard header["typ"] == .string("JWT") else { violated("accepted typ \(String(describing: header["typ"]))", token) }
    guard let kid = header["kid"]?.string, let key = Fixture.keys[kid] else { violated("accepted an unknown kid", token) }
    // The HMAC over the signing input, under the key the header names, is the signature: recomputed.
    let signingInput = bytes[..<(parts[0].count + 1 + parts[1].count)]
    let expected = Base64URL.encode(mac(key, signingInput))
    guard Array(expected.utf8) == Array(parts[2]) else {
        let other = Fixture.keys.first { Base64URL.encode(mac($0.value, signingInput)) == String(decoding: parts[2], as: UTF8.self) }
        violated("accepted a signature that is not HMAC-SHA256 under kid \(kid)'s key (matches kid: \(other?.key ?? "none"))", token)
    }
    guard let payloadBytes = Base64URL.decode(parts[1]), let claims = try? StrictJSON.parseObject(payloadBytes) else {
        violated("accepted a token whose payload is not base64url JSON", token)
    }
    guard claims["iss"] == .string(Fixture.issuer) else { violated("accepted iss \(String(describing: claims["iss"]))", token) }
    guard claims["sub"] == .string(result.user), Username.isCanonical(result.user) else { violated("sub differs or is not canonical", token) }
    guard claims["sid"] == .string(result.sid), claims["jti"] == .string(result.jti) else { violated("sid/jti differ from the payload", token) }
    guard claims["iat"]?.integer == result.issuedAt, claims["exp"]?.integer == result.expiresAt else { violated("iat/exp differ", token) }
    let (iat, exp) = (result.issuedAt, result.expiresAt)
    guard exp > iat, exp - iat <= Int64(Fixture.ttl) else { violated("accepted lifetime \(iat)...\(exp)", token) }
    guard iat <= Fixture.now + Int64(Fixture.leeway) else { violated("accepted iat in the future", token) }
    guard exp + Int64(Fixture.leeway) > Fixture.now else { violated("accepted an expired token", token) }
    if let nbf = claims["nbf"] {
        guard let value = nbf.integer, value <= Fixture.now + Int64(Fixture.leeway) else { violated("accepted nbf \(nbf)", token) }
    }
    switch (audience, claims["aud"]) {
    case (nil, nil): break
    case (let want?, .string(let aud)?) where aud == want: break
    case (let want?, .array(let values)?) where values.contains(.string(want)): break
    default: violated("accepted aud \(String(describing: claims["aud"])) for audience \(String(describing: audience))", token)
    }
}

/// The outcome of a verification: the claims, or the contract's error code. (Only the code: the
/// human-readable message may name a different one of several disallowed header members from one
/// call to the next, because it comes from iterating a Dictionary.)
enum Outcome: Equatable {
    case accepted(VerifiedToken)
    case refused(TokenGateError.Code)
}

func outcome(_ body: () throws(TokenGateError) -> VerifiedToken) -> Outcome {
    do throws(TokenGateError) { return .accepted(try body()) } catch { return .refused(error.code) }
}

func verifyAndCheck(_ token: String, selector: UInt8) {
    let (verifier, audience) = Fixture.verifiers[Int(selector >> 4) & 1]
    let first = outcome { () throws(TokenGateError) in try verifier.verify(token, now: Fixture.now) }
    let again = outcome { () throws(TokenGateError) in try verifier.verify(token, now: Fixture.now) }
    guard first == again else { violated("not deterministic: \(first) then \(again)", token) }
    // The overload the HTTP layer uses: a slice of the header value, not starting at index 0.
    let header = "Bearer " + token + " "
    let slice = header[header.utf8.index(header.startIndex, offsetBy: 7)..<header.utf8.index(before: header.endIndex)]
    let sliced = outcome { () throws(TokenGateError) in try verifier.verify(slice.utf8, now: Fixture.now) }
    guard first == sliced else { violated("String and Substring.UTF8View overloads differ: \(first) vs \(sliced)", token) }
    if case .accepted(let result) = first { checkAccepted(token, result, audience: audience) }
}

func checkBase64URL(_ bytes: [UInt8]) {
    if let decoded = Base64URL.decode(bytes) {
        guard Array(Base64URL.encode(decoded).utf8) == bytes else {
            fatalError("FuzzToken invariant violated: Base64URL accepted a non-canonical spelling \(bytes)")
        }
    }
    let encoded = Base64URL.encode(bytes)
    guard Base64URL.decode(Array(encoded.utf8)) == bytes else {
        fatalError("FuzzToken invariant violated: Base64URL round trip failed for \(bytes)")
    }
    guard Base64URL.isAlphabet(encoded.utf8) else { fatalError("FuzzToken invariant violated: encode left the alphabet") }
}

func checkStrictJSON(_ bytes: [UInt8], depthByte: UInt8) {
    let depth = Int(depthByte % 12)
    let shallow = try? StrictJSON.parseObject(bytes, maxDepth: depth)
    if shallow != nil {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            fatalError("FuzzToken invariant violated: StrictJSON accepted invalid UTF-8 \(bytes)")
        }
        guard (try? StrictJSON.parseObject(bytes, maxDepth: depth + 1)) == shallow else {
            fatalError("FuzzToken invariant violated: StrictJSON accepted at depth \(depth) but not \(depth + 1): \(bytes)")
        }
    }
}

func fuzzOne(_ input: [UInt8]) {
    guard let selector = input.first else { return }
    let rest = Array(input.dropFirst())
    let signingKey = Fixture.signingKeys[Int(selector >> 2) & 3]
    switch selector & 3 {
    case 0:
        verifyAndCheck(String(decoding: rest, as: UTF8.self), selector: selector)
    case 1:
        let parts = rest.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
        let header = Base64URL.encode(parts[0])
        let payload = Base64URL.encode(parts.count > 1 ? parts[1] : [])
        let input = header + "." + payload
        verifyAndCheck(input + "." + Base64URL.encode(mac(signingKey, input.utf8)), selector: selector)
    case 2:
        let input = String(decoding: rest, as: UTF8.self)
        verifyAndCheck(input + "." + Base64URL.encode(mac(signingKey, input.utf8)), selector: selector)
    default:
        checkBase64URL(rest)
        checkStrictJSON(rest, depthByte: selector >> 2)
        verifyAndCheck(String(decoding: rest, as: UTF8.self), selector: selector)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

/// libFuzzer's own main is never linked (see FuzzerDriver.h): this one runs its driver.
@main
enum FuzzTokenMain {
    static func main() { exit(tokengate_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv, LLVMFuzzerTestOneInput)) }
}

@_cdecl("LLVMFuzzerInitialize")
public func LLVMFuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    if let dir = getenv("TOKENGATE_FUZZ_SEEDS") {
        Seeds.write(to: String(cString: dir))
        exit(0)
    }
    return 0
}

// MARK: - Seed corpus

enum Seeds {
    static func segment(_ json: String) -> String { Base64URL.encode(Array(json.utf8)) }

    static func claims(
        sub: String = "alice",
        iat: Int64 = Fixture.now,
        exp: Int64 = Fixture.now + 30,
        extra: String = ""
    ) -> String {
        #"{"iss":"tokengate","sub":"\#(sub)","sid":"sSsSsSsSsSsSsSsSsSsSsS","jti":"jJjJjJjJjJjJjJjJjJjJjJ","iat":\#(iat),"exp":\#(exp)\#(extra)}"#
    }

    static func header(_ kid: String) -> String { #"{"alg":"HS256","typ":"JWT","kid":"\#(kid)"}"# }

    static func sign(_ header: String, _ payload: String, key: [UInt8]) -> String {
        let input = segment(header) + "." + segment(payload)
        return input + "." + Base64URL.encode(mac(key, input.utf8))
    }

    /// Tokens from jwt-kit, the way the service issues them.
    static func issued() -> [String] {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var tokens: [String] = []
        Task {
            let issuer = await TokenIssuer(key: Fixture.key1, kid: Fixture.kid1, issuer: "tokengate", audience: nil, tokenTTL: 30)
            let withAudience = await TokenIssuer(key: Fixture.key2, kid: Fixture.kid2, issuer: "tokengate", audience: "app", tokenTTL: 30)
            tokens.append(try await issuer.issue(user: "alice", sid: Identifier.random(), now: Fixture.now).token)
            tokens.append(try await withAudience.issue(user: "bob", sid: Identifier.random(), now: Fixture.now - 10).token)
            done.signal()
        }
        done.wait()
        return tokens
    }

    static func write(to dir: String) {
        var seeds: [[UInt8]] = []
        func add(_ selector: UInt8, _ text: String) { seeds.append([selector] + Array(text.utf8)) }
        // Mode 0: valid tokens (both kids, both verifiers), and near misses.
        let valid = [
            sign(header(Fixture.kid1), claims(), key: Fixture.key1),
            sign(header(Fixture.kid2), claims(sub: "bob"), key: Fixture.key2),
            sign(#"{"kid":"fuzz-kid","typ":"JWT","alg":"HS256"}"#, claims(), key: Fixture.key1),
            sign(#"{ "alg" : "HS256", "typ" : "JWT", "kid" : "fuzz-kid" }"#, claims(extra: #","nbf":1799999999"#), key: Fixture.key1),
            sign(header(Fixture.kid1), claims(extra: #","aud":"app""#), key: Fixture.key1),
            sign(header(Fixture.kid1), claims(extra: #","aud":["x","app"]"#), key: Fixture.key1),
            sign(#"{"alg":"HS256","typ":"JWT","kid":"other key\/2"}"#, claims(), key: Fixture.key2),
            sign(#"{"alg":"HS256","typ":"JWT","kid":"other key\u002f2"}"#, claims(sub: "carol"), key: Fixture.key2),
        ]
        for token in valid + issued() {
            add(0x00, token)
            add(0x10, token)
        }
        add(0x00, sign(header(Fixture.kid1), claims(), key: Fixture.key2))  // key confusion
        add(0x00, sign(#"{"alg":"none","typ":"JWT","kid":"fuzz-kid"}"#, claims(), key: Fixture.key1))
        add(0x00, sign(header(Fixture.kid1), claims(iat: Fixture.now - 100, exp: Fixture.now - 70), key: Fixture.key1))
        // Modes 1 and 2: JSON and signing inputs the harness signs (key 1, key 2, unknown key).
        let jsons: [(String, String)] = [
            (header(Fixture.kid1), claims()),
            (header(Fixture.kid2), claims(sub: "bob", extra: #","aud":"app""#)),
            (#"{"alg":"HS256","typ":"JWT","kid":"fuzz-kid","crit":["b64"],"b64":false}"#, claims()),
            (header(Fixture.kid1), #"{"iss":"tokengate","sub":"alice","sid":"sSsSsSsSsSsSsSsSsSsSsS","jti":"jJjJjJjJjJjJjJjJjJjJjJ","iat":1.8e9,"exp":18000000030}"#),
            (header(Fixture.kid1), claims(extra: #","nested":{"a":[[[[{"b":null}]]]],"t":true,"f":false,"n":-0.5e-3}"#)),
            (header(Fixture.kid1), claims(sub: "al\u{00E9}ce", extra: #","x":"\ud83d\ude00\n\t\"\\""#)),
        ]
        for (selectorBase, (h, p)) in zip([0, 4, 8, 0, 0, 0] as [UInt8], jsons) {
            add(0x01 | selectorBase, h + "\u{0}" + p)
            add(0x02 | selectorBase, segment(h) + "." + segment(p))
            add(0x11 | selectorBase, h + "\u{0}" + p)
        }
        // Mode 3: JSON documents and base64url text.
        for text in [claims(), header(Fixture.kid1), #"{"a":[1,2,{"b":"\u00e9"}],"c":-12.5E+3}"#, "eyJhbGciOiJIUzI1NiJ9", "QUJD", "QUI", "QQ", ""] {
            add(0x03, text)
            add(0x23, text)
        }
        for (index, seed) in seeds.enumerated() {
            let path = dir + "/seed-\(index)"
            guard let file = fopen(path, "wb") else { fatalError("cannot write \(path)") }
            _ = seed.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, file) }
            fclose(file)
        }
        print("FuzzToken: wrote \(seeds.count) seeds to \(dir)")
    }
}
