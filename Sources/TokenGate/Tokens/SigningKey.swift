public import Crypto

/// One signing key: an HS256 secret, an Ed25519 key (`EdDSA`) or a P-256 key (`ES256`).
///
/// A key file lists one key a line. The first signs; every one verifies, so a new key can take
/// over while tokens signed by the old one live out their TTL (rotation with overlap). Lines are
/// `EdDSA:<base64url 32-byte seed>`, `ES256:<base64url 32-byte scalar>`, or an HS256 secret of
/// at least 32 bytes (optionally written `HS256:<secret>`). `tokengate key generate` prints them.
public struct SigningKey: Sendable {
    /// The key material.
    public enum Material: Sendable {
        case hs256(SymmetricKey)
        case eddsa(Curve25519.Signing.PrivateKey)
        case es256(P256.Signing.PrivateKey)
    }

    /// The key material.
    public let material: Material
    /// The key's id (`kid`): derived from the key (its public half for EdDSA and ES256), so every
    /// instance sharing the key file agrees.
    public let kid: String
    /// The bytes secret to this key (the HS256 secret, or the private key), from which other
    /// secrets of the service are derived. Never logged.
    let secret: [UInt8]

    /// The JWS `alg`.
    public var algorithm: String {
        switch material {
        case .hs256: "HS256"
        case .eddsa: "EdDSA"
        case .es256: "ES256"
        }
    }

    /// The JWS signature of `input` (the `header.payload` bytes) with swift-crypto: HS256's MAC,
    /// Ed25519's signature, or ES256's `r || s` (RFC 7518 section 3.4), each 32 or 64 bytes.
    /// `TokenVerifier` checks them (`VerificationKey`); jwt-kit checks them in the tests.
    func sign(_ input: [UInt8]) throws -> [UInt8] {
        switch material {
        case .hs256(let secret): Array(HMAC<SHA256>.authenticationCode(for: input, using: secret))
        case .eddsa(let key): Array(try key.signature(for: input))
        case .es256(let key): Array(try key.signature(for: input).rawRepresentation)
        }
    }

    /// An HS256 key from its secret.
    public init(hs256 secret: [UInt8]) {
        self.material = .hs256(SymmetricKey(data: secret))
        self.secret = secret
        self.kid = Self.hexPrefix(SHA256.hash(data: secret))
    }

    /// An EdDSA (Ed25519) key.
    public init(eddsa key: Curve25519.Signing.PrivateKey) {
        self.material = .eddsa(key)
        self.secret = Array(key.rawRepresentation)
        self.kid = Self.hexPrefix(SHA256.hash(data: Array("EdDSA:".utf8) + Array(key.publicKey.rawRepresentation)))
    }

    /// An ES256 (P-256) key.
    public init(es256 key: P256.Signing.PrivateKey) {
        self.material = .es256(key)
        self.secret = Array(key.rawRepresentation)
        self.kid = Self.hexPrefix(SHA256.hash(data: Array("ES256:".utf8) + Array(key.publicKey.x963Representation)))
    }

    /// Parses one line of a key file. The message of a failure never contains the key.
    public init(line: String) throws(KeyError) {
        if line.hasPrefix("EdDSA:") {
            guard let raw = Base64URL.decode(line.utf8.dropFirst(6)), raw.count == 32,
                let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)
            else { throw KeyError("an EdDSA key must be 32 bytes in base64url (make one with `tokengate key generate --algorithm EdDSA`)") }
            self.init(eddsa: key)
        } else if line.hasPrefix("ES256:") {
            guard let raw = Base64URL.decode(line.utf8.dropFirst(6)), raw.count == 32,
                let key = try? P256.Signing.PrivateKey(rawRepresentation: raw)
            else {
                throw KeyError("an ES256 key must be a 32-byte P-256 scalar in base64url (make one with `tokengate key generate --algorithm ES256`)")
            }
            self.init(es256: key)
        } else {
            let secret = Array((line.hasPrefix("HS256:") ? String(line.dropFirst(6)) : line).utf8)
            guard secret.count >= 32 else { throw KeyError("must be at least 32 bytes (make one with `tokengate key generate`)") }
            self.init(hs256: secret)
        }
    }

    /// Parses a key file's text: one key a line, blank lines and `#` comments skipped.
    public static func parseList(_ text: String) throws(KeyError) -> [SigningKey] {
        var keys: [SigningKey] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingSpaces()
            if line.isEmpty || line.hasPrefix("#") { continue }
            do { keys.append(try SigningKey(line: line)) } catch { throw KeyError("line \(number + 1): \(error.message)") }
        }
        guard !keys.isEmpty else { throw KeyError("no key found") }
        var seen: Set<String> = []
        for key in keys where !seen.insert(key.kid).inserted { throw KeyError("the same key is listed twice") }
        return keys
    }

    /// A fresh key line for `algorithm` (`HS256`, `EdDSA` or `ES256`), as `key generate` prints it.
    public static func generateLine(algorithm: String) -> String? {
        switch algorithm {
        case "HS256":
            var generator = SystemRandomNumberGenerator()
            return Base64URL.encode((0..<48).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        case "EdDSA": return "EdDSA:" + Base64URL.encode(Curve25519.Signing.PrivateKey().rawRepresentation)
        case "ES256": return "ES256:" + Base64URL.encode(P256.Signing.PrivateKey().rawRepresentation)
        default: return nil
        }
    }

    /// The public JWK (RFC 7517) of an asymmetric key; nil for HS256, which is never published.
    public var publicJWK: [(String, String)]? {
        switch material {
        case .hs256:
            return nil
        case .eddsa(let key):
            return [
                ("kty", "OKP"), ("crv", "Ed25519"), ("x", Base64URL.encode(key.publicKey.rawRepresentation)), ("kid", kid),
                ("alg", "EdDSA"), ("use", "sig"),
            ]
        case .es256(let key):
            // x963 is 0x04 || x || y.
            let point = Array(key.publicKey.x963Representation)
            return [
                ("kty", "EC"), ("crv", "P-256"), ("x", Base64URL.encode(point[1..<33])), ("y", Base64URL.encode(point[33..<65])),
                ("kid", kid), ("alg", "ES256"), ("use", "sig"),
            ]
        }
    }

    private static func hexPrefix(_ digest: SHA256.Digest) -> String {
        Hex.encode(digest.prefix(6))
    }
}

/// Why a key could not be read; never contains the key.
public struct KeyError: Error, Sendable {
    /// What is wrong.
    public let message: String
    init(_ message: String) { self.message = message }
}
