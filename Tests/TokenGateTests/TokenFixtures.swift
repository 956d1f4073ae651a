import Crypto
import TokenGate

/// Builds tokens by hand, byte for byte, so tests can make every malformed variant.
struct TokenFactory {
    static let key = Array("0123456789abcdef0123456789abcdef-test-key".utf8)
    static let kid = "test-kid"
    static let now: Int64 = 1_800_000_000

    var key: [UInt8] = TokenFactory.key

    static func segment(_ json: String) -> String { Base64URL.encode(Array(json.utf8)) }

    static let header = #"{"alg":"HS256","typ":"JWT","kid":"test-kid"}"#

    static func claims(
        iss: String = "tokengate",
        sub: String = "alice",
        sid: String = "sSsSsSsSsSsSsSsSsSsSsS",
        jti: String = "jJjJjJjJjJjJjJjJjJjJjJ",
        iat: Int64 = now,
        exp: Int64 = now + 30,
        extra: String = ""
    ) -> String {
        #"{"iss":"\#(iss)","sub":"\#(sub)","sid":"\#(sid)","jti":"\#(jti)","iat":\#(iat),"exp":\#(exp)\#(extra)}"#
    }

    func sign(header: String = TokenFactory.header, payload: String = TokenFactory.claims()) -> String {
        let input = Self.segment(header) + "." + Self.segment(payload)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: key))
        return input + "." + Base64URL.encode(Array(mac))
    }

    static func verifier(audience: String? = nil, ttl: Int = 30, leeway: Int = 2) -> TokenVerifier {
        TokenVerifier(keys: [kid: SymmetricKey(data: key)], issuer: "tokengate", audience: audience, tokenTTL: ttl, leeway: leeway)
    }
}
