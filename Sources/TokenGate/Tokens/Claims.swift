/// The registered claims the verifier reads from a token's payload. Other members are allowed and
/// ignored, as RFC 7519 says.
///
/// The payload TokenGate writes is a flat object of short ASCII strings and integers. That form is
/// read by a scanner that builds no dictionary (`init?(flat:)`, the usual token: the dictionary's
/// hashing and allocation were 3 % of a verify's CPU); anything else (whitespace, escapes, other
/// members, arrays, duplicates) goes through `StrictJSON`, which decides as before. The scanner
/// accepts only inputs `StrictJSON` accepts with the same values, which a test holds it to.
struct Claims: Equatable {
    var iss: JSONValue?
    var aud: JSONValue?
    var sub: JSONValue?
    var sid: JSONValue?
    var jti: JSONValue?
    var iat: JSONValue?
    var exp: JSONValue?
    var nbf: JSONValue?

    init() {}

    /// Reads the claims of a payload, or throws the contract's error for one that is not a JSON object.
    init(payload bytes: [UInt8]) throws(TokenGateError) {
        self.init()
        if scan(bytes) { return }
        let object: [String: JSONValue]
        do { object = try StrictJSON.parseObject(bytes, maxDepth: 4) } catch { throw .invalidToken("payload is not a JSON object") }
        self = Claims(object)
    }

    /// The claims of an object `StrictJSON` read.
    init(_ object: [String: JSONValue]) {
        iss = object["iss"]
        aud = object["aud"]
        sub = object["sub"]
        sid = object["sid"]
        jti = object["jti"]
        iat = object["iat"]
        exp = object["exp"]
        nbf = object["nbf"]
    }

    /// The scanner: `{"name":value,...}` with no whitespace, every name one of the eight registered
    /// claims above and at most once, every value a string of printable ASCII without escapes or an
    /// integer in JSON's form (`-?(0|[1-9][0-9]*)`). Nil for anything else.
    init?(flat bytes: [UInt8]) {
        self.init()
        guard scan(bytes) else { return nil }
    }

    /// The scanner's work, into claims that are still empty: false where it leaves the payload to
    /// `StrictJSON` (the claims are then half-filled).
    private mutating func scan(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { bytes in
            var index = 0
            func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }
            guard peek() == UInt8(ascii: "{") else { return false }
            index += 1
            if peek() == UInt8(ascii: "}") { return index + 1 == bytes.count }
            while true {
                // A name: three lower-case letters.
                guard index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\""), bytes[index + 4] == UInt8(ascii: "\""),
                    bytes[index + 5] == UInt8(ascii: ":")
                else { return false }
                let name = (UInt32(bytes[index + 1]) << 16) | (UInt32(bytes[index + 2]) << 8) | UInt32(bytes[index + 3])
                index += 6
                // The value: a plain string or an integer, ending at `,` or `}`.
                let value: JSONValue
                guard let first = peek() else { return false }
                if first == UInt8(ascii: "\"") {
                    let start = index + 1
                    var end = start
                    while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20,
                        bytes[end] < 0x7F
                    {
                        end += 1
                    }
                    guard end < bytes.count, bytes[end] == UInt8(ascii: "\"") else { return false }
                    value = .string(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self))
                    index = end + 1
                } else {
                    let start = index
                    if first == UInt8(ascii: "-") { index += 1 }
                    let digits = index
                    while let byte = peek(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { index += 1 }
                    let count = index - digits
                    guard count > 0, count <= 19, count == 1 || bytes[digits] != UInt8(ascii: "0") else { return false }
                    value = .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
                }
                guard set(name, value) else { return false }
                guard let separator = peek() else { return false }
                index += 1
                if separator == UInt8(ascii: "}") { return index == bytes.count }
                guard separator == UInt8(ascii: ",") else { return false }
            }
        }
    }

    /// Stores a member read by the scanner; false for a name it does not take or a duplicate.
    private mutating func set(_ name: UInt32, _ value: JSONValue) -> Bool {
        func store(_ slot: inout JSONValue?) -> Bool {
            guard slot == nil else { return false }
            slot = value
            return true
        }
        switch name {
        case Self.iss: return store(&iss)
        case Self.aud: return store(&aud)
        case Self.sub: return store(&sub)
        case Self.sid: return store(&sid)
        case Self.jti: return store(&jti)
        case Self.iat: return store(&iat)
        case Self.exp: return store(&exp)
        case Self.nbf: return store(&nbf)
        default: return false
        }
    }

    // The names as the scanner packs them (three bytes in a word).
    private static let iss = name("iss"), aud = name("aud"), sub = name("sub"), sid = name("sid")
    private static let jti = name("jti"), iat = name("iat"), exp = name("exp"), nbf = name("nbf")

    private static func name(_ text: StaticString) -> UInt32 {
        text.withUTF8Buffer { (UInt32($0[0]) << 16) | (UInt32($0[1]) << 8) | UInt32($0[2]) }
    }
}
