import Crypto
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import TokenGate

@testable import TokenGateHTTP

/// Asymmetric signing over HTTP: the JWKS document and tokens a third party can check with it.
@Suite("JWKS and asymmetric signing")
struct KeysHTTPTests {
    @Test("/.well-known/jwks.json publishes the EdDSA key that signs and the old key still verifying, never an HS256 secret")
    func jwks() async throws {
        let current = try #require(SigningKey.generateLine(algorithm: "EdDSA"))
        let previous = try #require(SigningKey.generateLine(algorithm: "ES256"))
        let harness = try HTTPTests.Harness([.signingKey: "\(current)\n\(previous)\n\(signingKey)"])
        try await harness.run { client in
            let response = try await client.execute(uri: "/.well-known/jwks.json", method: .get)
            #expect(response.status == .ok)
            let document = try StrictJSON.parseObject(response.body.readableBytesView)
            guard case .array(let keys)? = document["keys"] else {
                Issue.record("no keys array")
                return
            }
            #expect(keys.count == 2)
            let jwks = keys.compactMap { value -> [String: JSONValue]? in
                if case .object(let members) = value { return members }
                return nil
            }
            #expect(jwks.map { $0["kty"]?.string } == ["OKP", "EC"])
            #expect(!jwks.contains { $0["d"] != nil || $0["k"] != nil }, "no private or secret material")

            // A token from login is signed with the first key and checks out with its published x.
            let login = try await HTTPTests.login(client)
            let parts = login.token.split(separator: ".")
            let header = try StrictJSON.parseObject(try #require(Base64URL.decode(parts[0].utf8)))
            #expect(header["alg"]?.string == "EdDSA")
            let jwk = try #require(jwks.first { $0["kid"]?.string == header["kid"]?.string })
            let x = try #require(jwk["x"]?.string.flatMap { Base64URL.decode($0.utf8) })
            let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: x)
            let signature = try #require(Base64URL.decode(parts[2].utf8))
            #expect(publicKey.isValidSignature(signature, for: Array("\(parts[0]).\(parts[1])".utf8)))
            #expect(try await client.execute(uri: "/api/me", method: .get, headers: HTTPTests.bearer(login.token)).status == .ok)
        }
    }

    @Test("an HS256-only service publishes an empty key set")
    func emptyJWKS() async throws {
        try await HTTPTests.Harness().run { client in
            let response = try await client.execute(uri: "/.well-known/jwks.json", method: .get)
            #expect(String(buffer: response.body) == #"{"keys":[]}"#)
        }
    }
}
