public import Crypto

/// Checks a token's form, signature and claims: pure computation, no I/O.
///
/// Works on the raw bytes of the token: the signature is checked (constant time) before the
/// payload is parsed, and the header is held to an allow-list (`alg`, `typ`, `kid`), so `none`,
/// `crit`, embedded keys (`jwk`, `jku`, `x5u`, `x5c`) and `b64` never get a say. An unknown `kid`
/// never falls back to another key.
public struct TokenVerifier: Sendable {
    /// The largest token accepted, checked before any decoding.
    public static let maxTokenBytes = 4096
    /// The algorithms TokenGate can be configured with; each key accepts only its own.
    public static let algorithms: Set<String> = ["HS256", "EdDSA", "ES256"]

    private let keys: [String: VerificationKey]
    /// The header segment TokenGate itself writes for each key (`TokenIssuer.header`), so the usual
    /// token skips header parsing. Anything else is parsed (a token of an earlier version, signed
    /// by jwt-kit with its members in another order, during a rolling upgrade).
    private let knownHeaders: [(segment: [UInt8], key: VerificationKey)]
    private let issuer: String
    private let audience: String?
    private let tokenTTL: Int64
    private let leeway: Int64

    /// Creates a verifier for HS256 secrets (by `kid`) and claim rules.
    public init(keys: [String: SymmetricKey], issuer: String, audience: String?, tokenTTL: Int, leeway: Int) {
        self.init(
            verificationKeys: keys.mapValues { .hmac(HMAC<SHA256>(key: $0)) },
            issuer: issuer,
            audience: audience,
            tokenTTL: tokenTTL,
            leeway: leeway
        )
    }

    /// Creates a verifier that accepts tokens signed by any of `keys` (each with its own algorithm).
    public init(signingKeys keys: [SigningKey], issuer: String, audience: String?, tokenTTL: Int, leeway: Int) {
        var byID: [String: VerificationKey] = [:]
        for key in keys { byID[key.kid] = VerificationKey(key) }
        self.init(verificationKeys: byID, issuer: issuer, audience: audience, tokenTTL: tokenTTL, leeway: leeway)
    }

    private init(verificationKeys keys: [String: VerificationKey], issuer: String, audience: String?, tokenTTL: Int, leeway: Int) {
        self.keys = keys
        var known: [(segment: [UInt8], key: VerificationKey)] = []
        // Key ids that need no JSON escaping (TokenGate's own are hex) get the fast path; any other
        // is found by parsing the header.
        for (kid, key) in keys where Base64URL.isAlphabet(kid.utf8) {
            known.append((Array(Base64URL.encode(TokenIssuer.header(algorithm: key.algorithm, kid: kid)).utf8), key))
        }
        self.knownHeaders = known
        self.issuer = issuer
        self.audience = audience
        self.tokenTTL = Int64(tokenTTL)
        self.leeway = Int64(leeway)
    }

    /// Verifies `token` at Unix time `now`, returning its claims or the contract's error.
    public func verify(_ token: Substring.UTF8View, now: Int64) throws(TokenGateError) -> VerifiedToken {
        // The work is done on the token's own contiguous bytes (a header value's storage), not
        // through string indices.
        let checked = token.withContiguousStorageIfAvailable { bytes in
            Result { () throws(TokenGateError) in try verify(bytes: bytes, now: now) }
        }
        if let checked { return try checked.get() }
        guard token.count <= Self.maxTokenBytes else { throw .invalidToken("too large") }
        return try Array(token).withUnsafeBufferPointer { bytes in
            Result { () throws(TokenGateError) in try verify(bytes: bytes, now: now) }
        }.get()
    }

    private func verify(bytes token: UnsafeBufferPointer<UInt8>, now: Int64) throws(TokenGateError) -> VerifiedToken {
        guard token.count <= Self.maxTokenBytes else { throw .invalidToken("too large") }
        let dot = UInt8(ascii: ".")
        guard let firstDot = token.firstIndex(of: dot) else { throw .invalidToken("not a JWS compact token") }
        guard let secondDot = token[(firstDot + 1)...].firstIndex(of: dot) else {
            throw .invalidToken("not a JWS compact token")
        }
        let signatureText = token[(secondDot + 1)...]
        guard !signatureText.contains(dot) else { throw .invalidToken("not a JWS compact token") }

        // Header: checked first, because its kid chooses the key.
        let headerSegment = token[..<firstDot]
        let key: VerificationKey
        if let known = knownHeaders.first(where: { $0.segment.elementsEqual(headerSegment) }) {
            key = known.key
        } else {
            key = try parseHeader(headerSegment)
        }

        // Signature over the raw "header.payload" bytes, before anything of the payload is read.
        guard let signature = Base64URL.decode(signatureText), signature.count == key.signatureLength else {
            throw .invalidToken("signature is malformed")
        }
        guard key.isValid(signature, for: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: token[..<secondDot]))) else {
            throw .invalidToken("signature does not verify")
        }

        // Claims.
        guard let payloadBytes = Base64URL.decode(token[(firstDot + 1)..<secondDot]) else {
            throw .invalidToken("payload is not base64url")
        }
        let claims = try Claims(payload: payloadBytes)
        guard claims.iss?.string == issuer else { throw .invalidToken("wrong issuer") }
        switch (audience, claims.aud) {
        case (nil, nil): break
        case (let expected?, .string(let aud)?) where aud == expected: break
        case (let expected?, .array(let values)?) where values.contains(.string(expected)): break
        default: throw .invalidToken("wrong audience")
        }
        guard let user = claims.sub?.string, UserID.isValid(user) else { throw .invalidToken("bad sub") }
        guard let sid = claims.sid?.string, Identifier.isValid(sid) else { throw .invalidToken("bad sid") }
        guard let jti = claims.jti?.string, Identifier.isValid(jti) else { throw .invalidToken("bad jti") }
        guard let iat = claims.iat?.integer, let exp = claims.exp?.integer else {
            throw .invalidToken("iat and exp must be integers")
        }
        let (lifetime, overflow) = exp.subtractingReportingOverflow(iat)
        guard exp > iat, !overflow, lifetime <= tokenTTL else { throw .invalidToken("lifetime is longer than allowed") }
        guard iat <= now + leeway else { throw .invalidToken("issued in the future") }
        if let nbf = claims.nbf {
            guard let notBefore = nbf.integer, notBefore <= now + leeway else { throw .invalidToken("not yet valid") }
        }
        guard exp + leeway > now else { throw .tokenExpired }
        return VerifiedToken(user: user, sid: sid, jti: jti, issuedAt: iat, expiresAt: exp)
    }

    /// The key named by a header TokenGate did not write itself (other member order or spacing).
    private func parseHeader(_ segment: Slice<UnsafeBufferPointer<UInt8>>) throws(TokenGateError) -> VerificationKey {
        guard let headerBytes = Base64URL.decode(segment) else { throw .invalidToken("header is not base64url") }
        let header: [String: JSONValue]
        do { header = try StrictJSON.parseObject(headerBytes, maxDepth: 2) } catch { throw .invalidToken("header is not a JSON object") }
        // The message is fixed: a member name is attacker text and is never reflected.
        guard header.keys.allSatisfy({ $0 == "alg" || $0 == "typ" || $0 == "kid" }) else {
            throw .invalidToken("the header has a member other than alg, typ and kid")
        }
        guard let algorithm = header["alg"]?.string, Self.algorithms.contains(algorithm) else {
            throw .invalidToken("algorithm not accepted")
        }
        guard header["typ"]?.string == "JWT" else { throw .invalidToken("typ must be JWT") }
        let key: VerificationKey
        if let kid = header["kid"] {
            // A kid names one key; an unknown one never falls back to another.
            guard let name = kid.string, let named = keys[name] else { throw .invalidToken("unknown key id") }
            key = named
        } else {
            // Without a kid only a verifier with a single key knows which key is meant.
            guard keys.count == 1, let only = keys.values.first else { throw .invalidToken("a key id is required") }
            key = only
        }
        // The key decides the algorithm: an HS256 token cannot borrow an EdDSA or ES256 public key.
        guard key.algorithm == algorithm else { throw .invalidToken("algorithm does not match the key") }
        return key
    }

    /// Verifies a token given as a string.
    public func verify(_ token: String, now: Int64) throws(TokenGateError) -> VerifiedToken {
        try verify(Substring(token).utf8, now: now)
    }
}

/// What verifies one key's signatures: the HS256 secret or an asymmetric public key.
enum VerificationKey: Sendable {
    /// HS256: the HMAC already keyed (its inner and outer pads hashed once), copied per check.
    case hmac(HMAC<SHA256>)
    case ed25519(Curve25519.Signing.PublicKey)
    case p256(P256.Signing.PublicKey)

    init(_ key: SigningKey) {
        switch key.material {
        case .hs256(let secret): self = .hmac(HMAC<SHA256>(key: secret))
        case .eddsa(let privateKey): self = .ed25519(privateKey.publicKey)
        case .es256(let privateKey): self = .p256(privateKey.publicKey)
        }
    }

    var algorithm: String {
        switch self {
        case .hmac: "HS256"
        case .ed25519: "EdDSA"
        case .p256: "ES256"
        }
    }

    /// Bytes of a signature: HS256's MAC, Ed25519's signature and ES256's `r || s` (RFC 7518 3.4).
    var signatureLength: Int {
        switch self {
        case .hmac: SHA256.byteCount
        case .ed25519, .p256: 64
        }
    }

    /// Checks `signature` over the raw signing input (`header.payload`), in constant time for HMAC.
    func isValid(_ signature: [UInt8], for input: UnsafeRawBufferPointer) -> Bool {
        switch self {
        case .hmac(let keyed):
            var mac = keyed
            mac.update(data: input)
            // Constant time, over the MAC's own bytes (swift-crypto's `==` takes the generic
            // `DataProtocol` path, 0.9 % of a verify's CPU).
            return mac.finalize().withUnsafeBytes { ConstantTime.equal($0, signature) }
        case .ed25519(let key):
            return key.isValidSignature(signature, for: Array(input))
        case .p256(let key):
            guard let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(parsed, for: Array(input))
        }
    }
}
