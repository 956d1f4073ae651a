// libFuzzer target over TokenGate's HTTP credential parsing: HeaderParsing.bearer(authorization:)
// and HeaderParsing.cookie(_:in:) (Sources/TokenGateHTTP/Support/Credentials.swift).
//
// Input: the first byte says how many `Authorization` values (bits 0-1) and `Cookie` values
// (bits 2-3) to take and which cookie name to look for (bits 4-5: tg_token, tg_csrf, a short
// name, or the next segment, made ASCII); the rest is split on '\n' (which no header value can
// hold) into those values, in that order.
//
// Invariants (a violation aborts, which libFuzzer records as a crash):
//   - nothing crashes;
//   - bearer: no value gives nil; two or more throw; a returned token is non-empty, holds no
//     space, is a byte suffix of the single value, and what precedes it is "bearer" in any case
//     and then only spaces;
//   - cookie: a returned value is non-empty, holds no ';' byte, does not end in a space, and (for
//     TokenGate's own names) appears literally as `name=value` in one of the values;
//   - both are deterministic.
//
// With TOKENGATE_FUZZ_SEEDS=<dir> in the environment the binary writes its seed corpus and exits.

import FuzzerDriver
import TokenGate
import TokenGateHTTP

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

func violated(_ what: String, _ values: [String]) -> Never {
    fatalError("FuzzHeaders invariant violated: \(what)\n  values: \(values.map { $0.debugDescription })")
}

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= haystack.count else { return false }
    if needle.isEmpty { return true }
    for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
        if haystack[start..<start + needle.count].elementsEqual(needle) { return true }
    }
    return false
}

func bearerOutcome(_ values: [String]) -> Result<String?, TokenGateError> {
    do throws(TokenGateError) {
        return .success(try HeaderParsing.bearer(authorization: values).map(String.init))
    } catch { return .failure(error) }
}

func cookieOutcome(_ name: String, _ values: [String]) -> Result<String?, TokenGateError> {
    do throws(TokenGateError) {
        return .success(try HeaderParsing.cookie(name, in: values).map(String.init))
    } catch { return .failure(error) }
}


func checkBearer(_ values: [String]) {
    let result = bearerOutcome(values)
    guard result == bearerOutcome(values) else { violated("bearer is not deterministic", values) }
    switch result {
    case .failure:
        guard !values.isEmpty else { violated("bearer threw without any Authorization value", values) }
    case .success(nil):
        guard values.isEmpty else { violated("bearer returned nil for \(values.count) value(s)", values) }
    case .success(let token?):
        guard values.count == 1 else { violated("bearer returned a token from \(values.count) values", values) }
        let header = Array(values[0].utf8)
        let bytes = Array(token.utf8)
        guard !bytes.isEmpty else { violated("bearer returned an empty token", values) }
        guard !bytes.contains(UInt8(ascii: " ")) else { violated("bearer token \(token.debugDescription) holds a space", values) }
        guard header.count >= bytes.count + 7, Array(header.suffix(bytes.count)) == bytes else {
            violated("bearer token \(token.debugDescription) is not a suffix of the header value", values)
        }
        let prefix = header.prefix(header.count - bytes.count)
        guard prefix.prefix(6).map({ $0 | 0x20 }) == Array("bearer".utf8), prefix.dropFirst(6).allSatisfy({ $0 == UInt8(ascii: " ") })
        else { violated("bearer token preceded by \(String(decoding: prefix, as: UTF8.self).debugDescription)", values) }
    }
}

func checkCookie(_ name: String, _ values: [String]) {
    let result = cookieOutcome(name, values)
    guard result == cookieOutcome(name, values) else { violated("cookie is not deterministic", values) }
    guard case .success(let value?) = result else { return }
    let bytes = Array(value.utf8)
    guard !bytes.isEmpty else { violated("cookie \(name) returned empty", values) }
    guard !bytes.contains(UInt8(ascii: ";")) else { violated("cookie \(name) value \(value.debugDescription) holds ';'", values) }
    guard bytes.last != UInt8(ascii: " ") else { violated("cookie \(name) value ends in a space", values) }
    if name == "tg_token" || name == "tg_csrf" {
        let pair = Array("\(name)=".utf8) + bytes
        guard values.contains(where: { contains(Array($0.utf8), pair) }) else {
            violated("cookie \(name) value \(value.debugDescription) does not appear as \(name)=value", values)
        }
    }
}

func fuzzOne(_ input: [UInt8]) {
    guard let selector = input.first else { return }
    var segments = input.dropFirst().split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map {
        String(decoding: $0, as: UTF8.self)
    }
    func take(_ count: Int) -> [String] {
        let taken = Array(segments.prefix(count))
        segments.removeFirst(taken.count)
        return taken
    }
    let authorization = take(Int(selector & 3))
    let cookies = take(Int(selector >> 2) & 3)
    let name: String
    switch (selector >> 4) & 3 {
    case 0: name = "tg_token"
    case 1: name = "tg_csrf"
    case 2: name = "a"
    default: name = String(take(1).first?.unicodeScalars.filter { $0.isASCII && $0.value > 0x20 && $0 != ";" && $0 != "=" }.map(Character.init) ?? [])
    }
    checkBearer(authorization)
    checkCookie(name, cookies)
    // Every segment also as a lone Authorization value and as a lone Cookie value.
    for segment in authorization + cookies {
        checkBearer([segment])
        checkCookie(name, [segment])
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

/// libFuzzer's own main is never linked (see FuzzerDriver.h): this one runs its driver.
@main
enum FuzzHeadersMain {
    static func main() { exit(tokengate_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv, LLVMFuzzerTestOneInput)) }
}

@_cdecl("LLVMFuzzerInitialize")
public func LLVMFuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    guard let dir = getenv("TOKENGATE_FUZZ_SEEDS") else { return 0 }
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    // (selector, values joined by '\n')
    let seeds: [(UInt8, String)] = [
        (0x01, "Bearer \(token)"),
        (0x01, "bearer    \(token)"),
        (0x01, "BEARER \(token) extra"),
        (0x01, "Basic dXNlcjpwYXNz"),
        (0x01, "Bearer "),
        (0x02, "Bearer \(token)\nBearer \(token)"),
        (0x04, "tg_token=\(token)"),
        (0x04, "a=1; tg_token=\(token); tg_csrf=abc  ; b=2"),
        (0x08, "tg_token=\(token)\ntg_token=other"),
        (0x14, "tg_csrf=; tg_csrf=x"),
        (0x24, "a==b;;a=c"),
        (0x34, "sess=v; sess=w\nsess"),
        (0x05, "Bearer \(token)\ntg_token=\(token); caf\u{00E9}=cr\u{00E8}me"),
        (0x04, "tg_token=\u{00E9}t\u{00E9}; x=\u{1F600}"),
        (0x0D, "Bearer \(token)\na=1\ntg_token=\(token)"),
    ]
    for (index, seed) in seeds.enumerated() {
        let bytes = [seed.0] + Array(seed.1.utf8)
        let path = String(cString: dir) + "/seed-\(index)"
        guard let file = fopen(path, "wb") else { fatalError("cannot write \(path)") }
        _ = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
    }
    print("FuzzHeaders: wrote \(seeds.count) seeds to \(String(cString: dir))")
    exit(0)
}
