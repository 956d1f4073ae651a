import Crypto
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import RedisClient
import Testing
import TokenGate

@testable import TokenGateHTTP

/// The JWT attack suite (RFC 8725, the OWASP JWT and session cheat sheets, the cases PyJWT and
/// jwt_tool try), each sent to the running service with a real Redis. Every attack must get the
/// contract's 401 code, write nothing to Redis and reflect nothing of the token in the answer.
@Suite("JWT attacks over HTTP")
struct JWTAttackTests {
    /// One attack: a name, how the request carries it, and the error code it must get.
    struct Attack: Sendable, CustomTestStringConvertible {
        let name: String
        let code: String
        let request: @Sendable (Forge) -> (uri: String, headers: HTTPFields, reflected: [String])
        var testDescription: String { name }

        /// An attack carried as `Authorization: Bearer <token>`.
        static func token(_ name: String, _ code: String = "invalid_token", _ make: @escaping @Sendable (Forge) -> String) -> Attack {
            Attack(name: name, code: code) { forge in
                let token = make(forge)
                return ("/api/me", [.authorization: "Bearer \(token)"], [token])
            }
        }
    }

    /// Builds tokens: signed with the service's own key (so only the attack itself is wrong), or not.
    struct Forge: Sendable {
        let key: [UInt8]
        let kid: String
        let user: String
        let sid: String
        let now: Int64

        static func segment(_ text: String) -> String { Base64URL.encode(Array(text.utf8)) }

        var header: String { #"{"alg":"HS256","typ":"JWT","kid":"\#(kid)"}"# }

        func claims(
            iss: String = #""tokengate""#,
            sub: String? = nil,
            jti: String = #""jJjJjJjJjJjJjJjJjJjJjJ""#,
            iat: String? = nil,
            exp: String? = nil,
            extra: String = ""
        ) -> String {
            #"{"iss":\#(iss),"sub":"\#(sub ?? user)","sid":"\#(sid)","jti":\#(jti),"iat":\#(iat ?? String(now)),"exp":\#(exp ?? String(now + 30))\#(extra)}"#
        }

        func mac(_ input: String, key: [UInt8]? = nil) -> String {
            Base64URL.encode(HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: key ?? self.key)))
        }

        /// `header.payload.signature` with a correct HMAC (unless another key is given).
        func sign(header: String? = nil, payload: String? = nil, key: [UInt8]? = nil) -> String {
            let input = Self.segment(header ?? self.header) + "." + Self.segment(payload ?? claims())
            return input + "." + mac(input, key: key)
        }

        func sign(rawHeader: String, rawPayload: String) -> String {
            let input = rawHeader + "." + rawPayload
            return input + "." + mac(input)
        }
    }

    static func unsigned(_ forge: Forge, alg: String) -> String {
        Forge.segment(#"{"alg":"\#(alg)","typ":"JWT"}"#) + "." + Forge.segment(forge.claims()) + "."
    }

    static let attacks: [Attack] = [
        // alg none and case games (RFC 8725 2.1, 3.1).
        .token("alg none") { unsigned($0, alg: "none") },
        .token("alg None") { unsigned($0, alg: "None") },
        .token("alg NONE") { unsigned($0, alg: "NONE") },
        .token("alg nOnE") { unsigned($0, alg: "nOnE") },
        .token("alg none keeping a valid-looking signature") { $0.sign(header: #"{"alg":"none","typ":"JWT","kid":"\#($0.kid)"}"#) },
        .token("alg hs256 in lower case") { $0.sign(header: #"{"alg":"hs256","typ":"JWT","kid":"\#($0.kid)"}"#) },
        .token("alg HS384") { $0.sign(header: #"{"alg":"HS384","typ":"JWT","kid":"\#($0.kid)"}"#) },
        .token("alg HS512") { $0.sign(header: #"{"alg":"HS512","typ":"JWT","kid":"\#($0.kid)"}"#) },
        .token("alg with trailing space") { $0.sign(header: #"{"alg":"HS256 ","typ":"JWT","kid":"\#($0.kid)"}"#) },
        // HS/asymmetric key confusion: an asymmetric alg over the HMAC key.
        .token("alg RS256 signed as HMAC") { $0.sign(header: #"{"alg":"RS256","typ":"JWT","kid":"\#($0.kid)"}"#) },
        .token("alg ES256 signed as HMAC") { $0.sign(header: #"{"alg":"ES256","typ":"JWT","kid":"\#($0.kid)"}"#) },
        .token("alg EdDSA signed as HMAC") { $0.sign(header: #"{"alg":"EdDSA","typ":"JWT","kid":"\#($0.kid)"}"#) },
        // Signature games.
        .token("signature stripped") { forge in String(forge.sign().prefix { $0 != "." }) + "." + Forge.segment(forge.claims()) + "." },
        .token("signature stripped, two segments") { Forge.segment($0.header) + "." + Forge.segment($0.claims()) },
        .token("signature truncated") { String($0.sign().dropLast(10)) },
        .token("signature bit-flipped") { token in
            var bytes = Array(token.sign().utf8)
            bytes[bytes.count - 3] = bytes[bytes.count - 3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            return String(decoding: bytes, as: UTF8.self)
        },
        .token("signed with another key") { $0.sign(key: Array("another-secret-another-secret-xx".utf8)) },
        .token("signed with an empty key") { $0.sign(key: []) },
        .token("signature with base64 padding") { $0.sign() + "=" },
        .token("payload swapped after signing") { forge in
            let parts = forge.sign().split(separator: ".")
            return "\(parts[0]).\(Forge.segment(forge.claims(sub: "bob"))).\(parts[2])"
        },
        // Keys the token brings along (never fetched, never used).
        .token("embedded jwk") { forge in
            let attackerKey = Array("attacker-chosen-secret-0123456789".utf8)
            let jwk = #"{"kty":"oct","k":"\#(Base64URL.encode(attackerKey))"}"#
            return forge.sign(header: #"{"alg":"HS256","typ":"JWT","kid":"\#(forge.kid)","jwk":\#(jwk)}"#, key: attackerKey)
        },
        .token("jku to an attacker's key set") {
            $0.sign(header: #"{"alg":"HS256","typ":"JWT","kid":"\#($0.kid)","jku":"http://127.0.0.1:1/jwks"}"#)
        },
        .token("x5u to an attacker's certificate") {
            $0.sign(header: #"{"alg":"HS256","typ":"JWT","kid":"\#($0.kid)","x5u":"http://127.0.0.1:1/c"}"#)
        },
        .token("x5c chain in the header") { $0.sign(header: #"{"alg":"HS256","typ":"JWT","kid":"\#($0.kid)","x5c":["MIIB"]}"#) },
        // Hostile kid values.
        .token("kid path traversal") { $0.sign(header: #"{"alg":"HS256","typ":"JWT","kid":"../../../../dev/null"}"#, key: []) },
        .token("kid SQL injection") { $0.sign(header: #"{"alg":"HS256","typ":"JWT","kid":"x' UNION SELECT 'key"}"#, key: Array("key".utf8)) },
        .token("kid with CRLF and RESP") { $0.sign(header: #"{"alg":"HS256","typ":"JWT","kid":"a\r\n*1\r\n$4\r\nPING"}"#) },
        .token("kid unknown") { $0.sign(header: #"{"alg":"HS256","typ":"JWT","kid":"not-a-key"}"#) },
        .token("kid not a string") { $0.sign(header: #"{"alg":"HS256","typ":"JWT","kid":7}"#) },
        // Header members that change the meaning.
        .token("unknown crit") { $0.sign(header: #"{"alg":"HS256","typ":"JWT","kid":"\#($0.kid)","crit":["exp"]}"#) },
        .token("b64 false") { $0.sign(header: #"{"alg":"HS256","typ":"JWT","kid":"\#($0.kid)","b64":false,"crit":["b64"]}"#) },
        .token("zip compressed payload") { $0.sign(header: #"{"alg":"HS256","typ":"JWT","kid":"\#($0.kid)","zip":"DEF"}"#) },
        .token("nested JWT content type") { $0.sign(header: #"{"alg":"HS256","typ":"JWT","kid":"\#($0.kid)","cty":"JWT"}"#) },
        .token("typ at+jwt") { $0.sign(header: #"{"alg":"HS256","typ":"at+jwt","kid":"\#($0.kid)"}"#) },
        .token("typ missing") { $0.sign(header: #"{"alg":"HS256","kid":"\#($0.kid)"}"#) },
        .token("duplicate alg in the header") { $0.sign(header: #"{"alg":"none","alg":"HS256","typ":"JWT","kid":"\#($0.kid)"}"#) },
        // Other serialisations and segment counts.
        .token("JWE compact (5 segments)") { forge in
            let header = Forge.segment(#"{"alg":"dir","enc":"A128GCM"}"#)
            return "\(header)..AAAAAAAAAAAAAAAA.\(Forge.segment(forge.claims())).AAAAAAAAAAAAAAAAAAAAAA"
        },
        .token("JWS JSON serialisation") { forge in
            #"{"payload":"\#(Forge.segment(forge.claims()))","protected":"\#(Forge.segment(forge.header))","signature":"AAAA"}"#
        },
        .token("four segments") { $0.sign() + ".AAAA" },
        .token("one segment") { Forge.segment($0.claims()) },
        .token("dots only") { _ in ".." },
        // Encodings.
        .token("non-canonical base64url tail") { forge in
            // 32 signature bytes take 43 characters with 2 bits to spare; setting a spare bit keeps
            // the bytes a lenient decoder returns (and so a valid HMAC) but is not canonical.
            let token = forge.sign()
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
            let index = alphabet.firstIndex(of: token.last!)!
            return String(token.dropLast()) + String(alphabet[index + 1])
        },
        .token("standard base64 alphabet") { forge in
            forge.sign(
                rawHeader: Forge.segment(forge.header),
                rawPayload: Forge.segment(forge.claims()).replacingOccurrences(of: "_", with: "/") + "+"
            )
        },
        .token("non-UTF-8 payload") { forge in
            forge.sign(rawHeader: Forge.segment(forge.header), rawPayload: Base64URL.encode([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D]))
        },
        .token("payload is a JSON array") { $0.sign(payload: "[1,2,3]") },
        .token("payload is a JSON string") { $0.sign(payload: #""alice""#) },
        .token("duplicate sub claim") { $0.sign(payload: $0.claims(extra: #","sub":"bob""#)) },
        .token("deeply nested claim") {
            $0.sign(payload: $0.claims(extra: #","x":"# + String(repeating: "[", count: 200) + String(repeating: "]", count: 200)))
        },
        .token("huge exp number") { $0.sign(payload: $0.claims(exp: "1" + String(repeating: "0", count: 400))) },
        .token("exp as a float") { $0.sign(payload: $0.claims(exp: String($0.now + 30) + ".5")) },
        .token("token over 4 KiB") { $0.sign(payload: $0.claims(extra: #","pad":""# + String(repeating: "a", count: 5000) + #"""#)) },
        // Claims missing or mistyped.
        .token("exp missing") { forge in
            forge.sign(
                payload: #"{"iss":"tokengate","sub":"\#(forge.user)","sid":"\#(forge.sid)","jti":"jJjJjJjJjJjJjJjJjJjJjJ","iat":\#(forge.now)}"#
            )
        },
        .token("exp as a string") { $0.sign(payload: $0.claims(exp: #""\#($0.now + 30)""#)) },
        .token("iat missing") { forge in
            forge.sign(
                payload: #"{"iss":"tokengate","sub":"\#(forge.user)","sid":"\#(forge.sid)","jti":"jJjJjJjJjJjJjJjJjJjJjJ","exp":\#(forge.now + 30)}"#
            )
        },
        .token("jti missing") { forge in
            forge.sign(payload: #"{"iss":"tokengate","sub":"\#(forge.user)","sid":"\#(forge.sid)","iat":\#(forge.now),"exp":\#(forge.now + 30)}"#)
        },
        .token("jti not a string") { $0.sign(payload: $0.claims(jti: "12345")) },
        .token("jti carrying RESP and CRLF") { $0.sign(payload: $0.claims(jti: #""a\r\n*1\r\n$8\r\nFLUSHALL\r\n""#)) },
        .token("sub empty") { $0.sign(payload: $0.claims(sub: "")) },
        .token("sub carrying CRLF") { $0.sign(payload: $0.claims(sub: "a\\r\\nb")) },
        .token("sub over 255 bytes") { $0.sign(payload: $0.claims(sub: String(repeating: "a", count: 256))) },
        // Any app id can be a sub: another case or a hash tag breaker is just a user without this session.
        .token("sub in another case", "token_revoked") { $0.sign(payload: $0.claims(sub: $0.user.uppercased())) },
        .token("sub with a hash tag breaker", "token_revoked") { $0.sign(payload: $0.claims(sub: "al}ce")) },
        .token("iat in the future") { $0.sign(payload: $0.claims(iat: String($0.now + 60), exp: String($0.now + 80))) },
        .token("nbf in the future") { $0.sign(payload: $0.claims(extra: #","nbf":\#($0.now + 60)"#)) },
        .token("wrong iss") { $0.sign(payload: $0.claims(iss: #""evil""#)) },
        .token("aud where none is configured") { $0.sign(payload: $0.claims(extra: #","aud":"other-app""#)) },
        .token("lifetime over TOKEN_TTL") { $0.sign(payload: $0.claims(exp: String($0.now + 3600))) },
        .token("expired", "token_expired") { $0.sign(payload: $0.claims(iat: String($0.now - 100), exp: String($0.now - 70))) },
        .token("validly signed for a session never created", "token_revoked") { $0.sign() },
        // How the token travels.
        Attack(name: "token in the query string", code: "missing_token") { forge in
            let token = forge.sign()
            return ("/api/me?access_token=\(token)", [:], [token])
        },
        Attack(name: "two Authorization headers", code: "invalid_token") { forge in
            let token = forge.sign()
            var headers: HTTPFields = [.authorization: "Bearer \(token)"]
            headers.append(HTTPField(name: .authorization, value: "Bearer \(token)"))
            return ("/api/me", headers, [token])
        },
        Attack(name: "Basic scheme", code: "missing_token") { forge in
            let token = forge.sign()
            return ("/api/me", [.authorization: "Basic \(token)"], [token])
        },
        Attack(name: "token with spaces inside", code: "invalid_token") { forge in
            let token = forge.sign()
            return ("/api/me", [.authorization: "Bearer \(token) \(token)"], [token])
        },
        Attack(name: "session cookie while cookie mode is off", code: "missing_token") { forge in
            let token = forge.sign()
            return ("/api/me", [.cookie: "__Host-tg_token=\(token)"], [token])
        },
    ]

    @Test("every attack gets its 401, writes nothing and reflects nothing", arguments: attacks)
    func attack(_ attack: Attack) async throws {
        let harness = try HTTPTests.Harness()
        try await harness.run { client in
            // A real session exists, so an attack has keys it could try to touch.
            let victim = try await HTTPTests.login(client)
            let forge = Forge(
                key: harness.configuration.hs256Secret,
                kid: harness.configuration.signingKeyID,
                user: "alice",
                sid: Identifier.random(),
                now: harness.clock.now()
            )
            let before = try await harness.snapshot()
            let (uri, headers, reflected) = attack.request(forge)
            let response = try await client.execute(uri: uri, method: .get, headers: headers)
            HTTPTests.expectError(response, .unauthorized, attack.code)
            let body = String(buffer: response.body)
            for secret in reflected {
                let payload = secret.split(separator: ".").dropFirst().first.map(String.init) ?? secret
                #expect(!body.contains(secret) && (payload.count < 8 || !body.contains(payload)), "the answer reflects the token")
            }
            #expect(try await harness.snapshot() == before, "the attack changed Redis")
            #expect(try await client.execute(uri: "/api/me", method: .get, headers: HTTPTests.bearer(victim.token)).status == .ok)
        }
    }

    @Test("the suite covers at least 40 distinct attacks")
    func coverage() {
        #expect(Set(Self.attacks.map(\.name)).count == Self.attacks.count)
        #expect(Self.attacks.count >= 40)
    }
}

extension HTTPTests.Harness {
    /// Every key of this test's service with its type and value (TTLs excluded: they tick).
    func snapshot() async throws -> [String: String] {
        var result: [String: String] = [:]
        for key in try await allKeys() {
            let type = try await redis.send(["TYPE", key]).string ?? "?"
            let value: RESPValue
            switch type {
            case "hash": value = try await redis.send(["HGETALL", key])
            case "zset": value = try await redis.send(["ZRANGE", key, "0", "-1", "WITHSCORES"])
            default: value = try await redis.send(["GET", key])
            }
            result[key] = "\(type) \(value)"
        }
        return result
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
