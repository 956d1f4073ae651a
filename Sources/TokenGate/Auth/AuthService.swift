import Crypto
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What happens on login, refresh, logout, close and verify: the domain's one entry point.
///
/// The HTTP layer parses requests and maps errors; the CLI uses the same service for operator
/// commands. Tokens are checked in two steps: `TokenVerifier` (signature and claims, no I/O), then
/// one Redis round trip in `SessionStore`.
public struct AuthService: Sendable {
    /// The configuration in force.
    public let configuration: Configuration
    /// Sessions in Redis.
    public let store: SessionStore
    /// Users.
    public let users: UserStore
    private let verifier: TokenVerifier
    private let issuer: TokenIssuer
    private let now: @Sendable () -> Int64
    private let logger: Logger

    /// A token handed to a client.
    public struct Grant: Sendable {
        /// The JWT.
        public let token: String
        /// Seconds until it expires.
        public let expiresIn: Int
        /// Its session.
        public let sid: String
        /// Its user.
        public let user: String
    }

    /// Creates the service. `now` gives Unix seconds (injected so tests can move time).
    public init(
        configuration: Configuration,
        store: SessionStore,
        users: UserStore,
        logger: Logger,
        now: @escaping @Sendable () -> Int64 = { UnixTime.now() }
    ) async {
        self.configuration = configuration
        self.store = store
        self.users = users
        self.logger = logger
        self.now = now
        self.verifier = TokenVerifier(
            keys: [configuration.signingKeyID: SymmetricKey(data: configuration.signingKey)],
            issuer: configuration.issuer,
            audience: configuration.audience,
            tokenTTL: configuration.tokenTTL,
            leeway: configuration.clockLeeway
        )
        self.issuer = await TokenIssuer(
            key: configuration.signingKey,
            kid: configuration.signingKeyID,
            issuer: configuration.issuer,
            audience: configuration.audience,
            tokenTTL: configuration.tokenTTL
        )
    }

    /// Logs a user in: rate limit, bcrypt (off the event loop), then one script creating the session.
    public func login(username rawName: String, password: String, userAgent: String, address: String) async throws(TokenGateError) -> Grant {
        let name = Username.canonical(rawName)
        let counted = name ?? rawName.lowercased()
        let wait = try await store.beginLoginAttempt(
            user: counted,
            address: address,
            userLimit: configuration.maxFailedLoginsPerUser,
            addressLimit: configuration.maxFailedLoginsPerAddress,
            window: configuration.failedLoginWindow
        )
        if wait > 0 {
            throw TokenGateError(.rateLimited, "too many failed logins; try again later", retryAfter: wait)
        }
        guard await users.verify(username: name ?? "", password: password), let user = name else {
            logger.info("login failed", metadata: ["address": "\(address)"])
            throw .invalidCredentials
        }
        try await store.releaseLoginAttempt(user: counted, address: address)
        let sid = Identifier.random()
        let issued = try await sign(user: user, sid: sid)
        try await store.create(
            user: user,
            sid: sid,
            jti: issued.jti,
            ttl: configuration.tokenTTL,
            userAgent: String(userAgent.prefix(256)),
            address: address
        )
        logger.info("login", metadata: ["user": "\(user)", "sid": "\(sid)"])
        return Grant(token: issued.token, expiresIn: configuration.tokenTTL, sid: sid, user: user)
    }

    /// Checks a token's signature and claims only (no I/O).
    public func verifyClaims(_ token: Substring.UTF8View) throws(TokenGateError) -> VerifiedToken {
        try verifier.verify(token, now: now())
    }

    /// The full check for a protected request: claims, then Redis. `activity` restarts the idle clock.
    public func authenticate(_ token: Substring.UTF8View, activity: Bool) async throws(TokenGateError) -> VerifiedToken {
        let claims = try verifier.verify(token, now: now())
        let check = try await store.check(
            claims,
            activity: activity,
            idle: configuration.sessionIdle,
            maxAge: configuration.sessionMaxAge
        )
        if let error = check.error { throw error }
        return claims
    }

    /// Issues a successor token in the same session. Does not count as user activity.
    public func refresh(_ token: Substring.UTF8View) async throws(TokenGateError) -> Grant {
        let claims = try verifier.verify(token, now: now())
        guard users.contains(claims.user) else {
            // Removed from the users file: the session ends now instead of living on through refreshes.
            _ = try await store.revoke(user: claims.user, sid: claims.sid)
            throw .tokenRevoked
        }
        let issued = try await sign(user: claims.user, sid: claims.sid)
        let check = try await store.refresh(
            claims,
            newJti: issued.jti,
            ttl: configuration.tokenTTL,
            idle: configuration.sessionIdle,
            maxAge: configuration.sessionMaxAge
        )
        if let error = check.error { throw error }
        return Grant(token: issued.token, expiresIn: configuration.tokenTTL, sid: claims.sid, user: claims.user)
    }

    /// Ends the token's session.
    public func logout(_ token: Substring.UTF8View) async throws(TokenGateError) {
        let claims = try verifier.verify(token, now: now())
        guard try await store.logout(claims) else { throw .tokenRevoked }
        logger.info("logout", metadata: ["user": "\(claims.user)", "sid": "\(claims.sid)"])
    }

    /// Ends every session of the token's user.
    public func logoutAll(_ token: Substring.UTF8View) async throws(TokenGateError) {
        let claims = try verifier.verify(token, now: now())
        guard try await store.logoutAll(claims) else { throw .tokenRevoked }
        logger.info("logout-all", metadata: ["user": "\(claims.user)"])
    }

    /// The page is closing: the session survives only `CLOSE_GRACE` unless refreshed.
    public func close(_ token: Substring.UTF8View) async throws(TokenGateError) {
        let claims = try verifier.verify(token, now: now())
        guard try await store.close(claims, grace: configuration.closeGrace) else { throw .tokenRevoked }
    }

    /// Seconds until `token` expires, by this instance's clock.
    public func secondsLeft(_ token: VerifiedToken) -> Int64 {
        max(0, token.expiresAt - now())
    }

    private func sign(user: String, sid: String) async throws(TokenGateError) -> IssuedToken {
        do {
            return try await issuer.issue(user: user, sid: sid, now: now())
        } catch {
            logger.error("signing failed", metadata: ["error": "\(error)"])
            throw TokenGateError(.storeUnavailable, "could not sign a token")
        }
    }
}

/// The wall clock in whole Unix seconds (what `iat` and `exp` are measured in).
public enum UnixTime {
    /// Now, in Unix seconds.
    public static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec)
    }
}
