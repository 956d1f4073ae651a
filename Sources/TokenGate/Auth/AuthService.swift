public import CoreMetrics
import Crypto
public import Logging
public import NIOCore
import RedisClient
import Synchronization

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
    /// The signing keys and users in force, replaced as a whole by `reload`.
    private let loaded: LoadedFiles
    private let now: @Sendable () -> Int64
    private let logger: Logger
    /// The configuration's session limits, made once (every request passes them to the store).
    private let limits: SessionStore.Limits
    /// Counts rotated-out tokens that came back after their grace window (`DomainMetric.tokenReplays`).
    private let replays: Counter

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

    /// A request admitted by `authenticate`: its token and, with per-request rotation, the
    /// successor the response must carry.
    public struct Admission: Sendable {
        /// The verified, live token.
        public let identity: VerifiedToken
        /// The token's successor (per-request rotation), else nil.
        public let successor: String?
    }

    /// Creates the service. `now` gives Unix seconds (injected so tests can move time); replays
    /// are counted through `metrics`.
    public init(
        configuration: Configuration,
        store: SessionStore,
        users: UserStore,
        logger: Logger,
        metrics: any MetricsFactory = MetricsSystem.factory,
        now: @escaping @Sendable () -> Int64 = { UnixTime.now() }
    ) {
        self.replays = DomainMetric.tokenReplays.counter(metrics)
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.now = now
        self.limits = SessionStore.Limits(
            ttl: configuration.tokenTTL,
            idle: configuration.sessionIdle,
            maxAge: configuration.sessionMaxAge,
            reuseGrace: configuration.reuseGrace
        )
        self.loaded = LoadedFiles(
            Secrets(
                generation: 1,
                signingKeys: configuration.signingKeys,
                users: users,
                serviceKeys: configuration.admin?.keys,
                configuration: configuration
            )
        )
    }

    /// The users in force (the users file as last loaded).
    public var users: UserStore { loaded.current.users }
    /// The signing keys in force: the first signs, every one verifies.
    public var signingKeys: [SigningKey] { loaded.current.signingKeys }
    /// The service API's keys in force (nil when the service API is off).
    public var serviceKeys: ServiceKeys? { loaded.current.serviceKeys }
    /// 1 for what was loaded at start, one more for every reload.
    public var generation: Int { loaded.current.generation }

    /// Puts new signing keys, users and service keys in force at once (an operator's `SIGHUP`):
    /// every request from now on uses them; one already past its checks finishes with the old ones.
    /// Returns the new generation.
    @discardableResult
    public func reload(signingKeys: [SigningKey], users: UserStore, serviceKeys: ServiceKeys?) -> Int {
        let next = loaded.current.generation + 1
        let secrets = Secrets(
            generation: next,
            signingKeys: signingKeys,
            users: users,
            serviceKeys: serviceKeys,
            configuration: configuration
        )
        loaded.replace(with: secrets)
        return next
    }

    private var verifier: TokenVerifier { loaded.current.verifier }
    private var issuer: TokenIssuer { loaded.current.issuer }
    private var csrfKeys: [SymmetricKey] { loaded.current.csrfKeys }

    /// How long a login waits for a free slot of its failed-login counters (other checks of the
    /// same user's password in flight) before it is refused.
    static let loginSlotWait: Duration = .seconds(10)

    /// Logs a user in: a slot in the failed-login counters, bcrypt (off the event loop), then one
    /// script creating the session.
    public func login(username rawName: String, password: String, userAgent: String, address: String) async throws(TokenGateError) -> Grant {
        let name = Username.canonical(rawName)
        let counted = name ?? rawName.lowercased()
        let limitedAddress = IPAddress.limitKey(address, ipv6Prefix: configuration.ipv6LimitPrefix)
        let attempt = SessionStore.LoginAttempt(user: counted, address: limitedAddress)
        try await admitLogin(attempt)
        // One users file for the whole login: a reload in between must not record the new file's
        // credential for a password the old file accepted.
        let users = self.users
        let verified = await users.verify(username: name ?? "", password: password)
        try await store.endLoginAttempt(attempt, failed: !verified, limits: loginLimits)
        guard verified, let user = name else {
            logger.info("login failed", metadata: ["address": "\(address)"])
            throw .invalidCredentials
        }
        let grant = try await openSession(user: user, userAgent: userAgent, address: address, credential: users.credential(of: user))
        logger.info("login", metadata: ["user": "\(UserID.headerValue(user))", "sid": "\(grant.sid)"])
        return grant
    }

    /// Waits for a slot in the failed-login counters. Only failures refuse a login: attempts that
    /// find every slot taken by password checks still in flight wait (with growing pauses, up to
    /// `loginSlotWait`), so parallel correct logins all get through while parallel guesses never
    /// check more passwords than the limits allow.
    private func admitLogin(_ attempt: SessionStore.LoginAttempt) async throws(TokenGateError) {
        let deadline = ContinuousClock.now + Self.loginSlotWait
        var pause = Duration.milliseconds(5)
        while true {
            switch try await store.beginLoginAttempt(attempt, limits: loginLimits) {
            case .admitted:
                return
            case .refused(let retryAfter):
                throw TokenGateError(.rateLimited, "too many failed logins; try again later", retryAfter: retryAfter)
            case .busy:
                guard ContinuousClock.now + pause < deadline else {
                    throw TokenGateError(.rateLimited, "too many logins of this user at once; try again later", retryAfter: 1)
                }
                do { try await Task.sleep(for: pause) } catch { throw .storeUnavailable }
                pause = min(pause * 2, .milliseconds(100))
            }
        }
    }

    private var loginLimits: SessionStore.LoginLimits {
        SessionStore.LoginLimits(
            perUserAndAddress: configuration.maxFailedLoginsPerUserAndAddress,
            perUser: configuration.maxFailedLoginsPerUser,
            perAddress: configuration.maxFailedLoginsPerAddress,
            window: configuration.failedLoginWindow
        )
    }

    /// Starts a session for a user the caller authenticated itself (the service API,
    /// `docs/openapi.yaml`): no password and no login rate limit; the user need not be in the users file.
    /// `user` is the app's id exactly as given (`UserID`: no case folding, no normalisation).
    /// `keyName` names the service key, which the session records (field `via`) and the log shows.
    public func startSession(user rawName: String, userAgent: String, address: String, keyName: String) async throws(TokenGateError) -> Grant {
        guard UserID.isValid(rawName) else { throw UserID.invalid }
        let user = rawName
        let grant = try await openSession(user: user, userAgent: userAgent, address: address, via: keyName)
        logger.info("service session started", metadata: ["user": "\(UserID.headerValue(user))", "sid": "\(grant.sid)", "service_key": "\(keyName)"])
        return grant
    }

    /// UTF-8 bytes of the User-Agent a session records (longer ones are cut on a scalar boundary).
    public static let maxUserAgentBytes = 256
    /// UTF-8 bytes of the client address a session records.
    static let maxAddressBytes = 64

    /// One script: the session, its first token and its index entry (the session cap applies). A
    /// password login records the fingerprint of the user's password hash (`credential`), a session
    /// of the service API the name of its key (`via`).
    private func openSession(
        user: String,
        userAgent: String,
        address: String,
        via: String? = nil,
        credential: String? = nil
    ) async throws(TokenGateError) -> Grant {
        let sid = Identifier.random()
        let issued = try sign(user: user, sid: sid)
        try await store.create(
            user: user,
            sid: sid,
            jti: issued.jti,
            ttl: configuration.tokenTTL,
            userAgent: userAgent.utf8Prefix(Self.maxUserAgentBytes),
            address: address.utf8Prefix(Self.maxAddressBytes),
            maxSessions: configuration.maxSessions,
            via: via,
            credential: credential
        )
        return Grant(token: issued.token, expiresIn: configuration.tokenTTL, sid: sid, user: user)
    }

    /// Checks a token's signature and claims only (no I/O).
    public func verifyClaims(_ token: Substring.UTF8View) throws(TokenGateError) -> VerifiedToken {
        try verifier.verify(token, now: now())
    }

    /// The full check for a protected request: claims, then one Redis script. `activity` restarts
    /// the idle clock. With per-request rotation the admission carries the token's successor, unless
    /// `spend` is false (a request nothing answers: its token is checked, not spent).
    /// `completion` runs on `eventLoop` (any loop when nil; at once when the token itself is
    /// refused), with no task: the HTTP fast path calls this from its channel handler.
    public func authenticate(
        _ token: Substring.UTF8View,
        activity: Bool,
        spend: Bool = true,
        on eventLoop: (any EventLoop)?,
        _ completion: @escaping @Sendable (Result<Admission, TokenGateError>) -> Void
    ) {
        let claims: VerifiedToken
        do { claims = try verifier.verify(token, now: now()) } catch {
            completion(.failure(error))
            return
        }
        if configuration.rotation == .perRequest, spend {
            rotate(claims, activity: activity, on: eventLoop) { result in
                completion(result.map { Admission(identity: claims, successor: $0.token) })
            }
            return
        }
        store.check(claims, activity: activity, limits: limits, on: eventLoop) { result in
            completion(
                result.flatMap { check in
                    if let error = check.error { return .failure(refusal(error, check, claims)) }
                    return .success(Admission(identity: claims, successor: nil))
                }
            )
        }
    }

    /// `authenticate`, awaited.
    public func authenticate(_ token: Substring.UTF8View, activity: Bool, spend: Bool = true) async throws(TokenGateError) -> Admission {
        try await awaiting { authenticate(token, activity: activity, spend: spend, on: nil, $0) }
    }

    /// Issues a successor token in the same session. Does not count as user activity. With
    /// per-request rotation this is the token's one successor, the same one a protected request
    /// made with it got (or gets).
    public func refresh(_ token: Substring.UTF8View) async throws(TokenGateError) -> Grant {
        let claims = try verifier.verify(token, now: now())
        if configuration.rotation == .perRequest {
            let successor = try await rotate(claims, activity: false)
            return Grant(token: successor.token, expiresIn: Int(secondsLeft(successor.claims)), sid: claims.sid, user: claims.user)
        }
        let issued = try sign(user: claims.user, sid: claims.sid)
        // A password session of a user removed from the users file, or whose password changed,
        // ends in the script instead of living on through refreshes; a session the service API
        // started does not need the file.
        let check = try await store.refresh(claims, newJti: issued.jti, limits: limits, credential: users.credential(of: claims.user))
        if let error = check.error { throw refusal(error, check, claims) }
        return Grant(token: issued.token, expiresIn: configuration.tokenTTL, sid: claims.sid, user: claims.user)
    }

    /// The CSRF token of a session for cookie mode: an HMAC of the session id, so any instance can
    /// check it and it cannot be made up for another session.
    public func csrfToken(sid: String) -> String {
        csrfToken(sid: sid, key: csrfKeys[0])
    }

    /// Whether `token` is the CSRF token of session `sid` under any configured key (a key rotation
    /// must not invalidate the CSRF cookies of live sessions).
    public func isCSRFToken(_ token: Substring, sid: String) -> Bool {
        csrfKeys.contains { ConstantTime.equal(csrfToken(sid: sid, key: $0).utf8, token.utf8) }
    }

    private func csrfToken(sid: String, key: SymmetricKey) -> String {
        Base64URL.encode(Array(HMAC<SHA256>.authenticationCode(for: Array(sid.utf8), using: key)).prefix(18))
    }

    /// Signs a candidate successor and lets Redis pick the one successor of `claims`.
    private func rotate(
        _ claims: VerifiedToken,
        activity: Bool,
        on eventLoop: (any EventLoop)?,
        _ completion: @escaping @Sendable (Result<(token: String, claims: VerifiedToken), TokenGateError>) -> Void
    ) {
        let candidate: IssuedToken
        do { candidate = try sign(user: claims.user, sid: claims.sid) } catch {
            completion(.failure(error))
            return
        }
        store.rotate(
            claims,
            candidate: candidate.token,
            candidateJti: candidate.jti,
            activity: activity,
            limits: limits,
            credential: users.credential(of: claims.user),  // as for `refresh`
            on: eventLoop
        ) { result in
            completion(
                result.flatMap { result in
                    if let error = result.check.error { return .failure(refusal(error, result.check, claims)) }
                    guard let token = result.successor else { return .failure(.storeUnavailable) }
                    // The successor may have been signed by another instance: it is checked like any token.
                    guard let successor = try? verifier.verify(token, now: now()), successor.sid == claims.sid,
                        successor.user == claims.user
                    else {
                        logger.error(
                            "stored successor token does not verify",
                            metadata: ["user": "\(UserID.headerValue(claims.user))", "sid": "\(claims.sid)"]
                        )
                        return .failure(.storeUnavailable)
                    }
                    return .success((token, successor))
                }
            )
        }
    }

    /// `rotate`, awaited.
    private func rotate(_ claims: VerifiedToken, activity: Bool) async throws(TokenGateError) -> (token: String, claims: VerifiedToken) {
        try await awaiting { rotate(claims, activity: activity, on: nil, $0) }
    }

    /// Logs and counts a replayed rotated-out token before refusing it.
    private func refusal(_ error: TokenGateError, _ check: SessionStore.Check, _ claims: VerifiedToken) -> TokenGateError {
        if check == .replayed {
            logger.warning(
                "rotated-out token used after its grace window: session ended",
                metadata: ["user": "\(UserID.headerValue(claims.user))", "sid": "\(claims.sid)"]
            )
            replays.increment()
        }
        return error
    }

    /// Ends the token's session.
    public func logout(_ token: Substring.UTF8View) async throws(TokenGateError) {
        let claims = try verifier.verify(token, now: now())
        let check = try await store.logout(claims, reuseGrace: configuration.reuseGrace)
        if let error = check.error { throw refusal(error, check, claims) }
        logger.info("logout", metadata: ["user": "\(UserID.headerValue(claims.user))", "sid": "\(claims.sid)"])
    }

    /// Ends every session of the token's user.
    public func logoutAll(_ token: Substring.UTF8View) async throws(TokenGateError) {
        let claims = try verifier.verify(token, now: now())
        let check = try await store.logoutAll(claims, reuseGrace: configuration.reuseGrace)
        if let error = check.error { throw refusal(error, check, claims) }
        logger.info("logout-all", metadata: ["user": "\(UserID.headerValue(claims.user))"])
    }

    /// The page is closing: the session survives only `CLOSE_GRACE` unless refreshed.
    public func close(_ token: Substring.UTF8View) async throws(TokenGateError) {
        let claims = try verifier.verify(token, now: now())
        let check = try await store.close(claims, grace: configuration.closeGrace, reuseGrace: configuration.reuseGrace)
        if let error = check.error { throw refusal(error, check, claims) }
    }

    /// Seconds until `token` expires, by this instance's clock.
    public func secondsLeft(_ token: VerifiedToken) -> Int64 {
        max(0, token.expiresAt - now())
    }

    private func sign(user: String, sid: String) throws(TokenGateError) -> IssuedToken {
        do {
            return try issuer.issue(user: user, sid: sid, now: now())
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

/// What the signing-key file, the users file and the service keys file said when last loaded, with
/// everything made from them (verifier, issuer, CSRF secrets): one immutable value, so a request
/// sees one generation.
private final class Secrets: Sendable {
    let generation: Int
    let signingKeys: [SigningKey]
    let users: UserStore
    let serviceKeys: ServiceKeys?
    let verifier: TokenVerifier
    let issuer: TokenIssuer
    let csrfKeys: [SymmetricKey]

    init(generation: Int, signingKeys: [SigningKey], users: UserStore, serviceKeys: ServiceKeys?, configuration: Configuration) {
        self.generation = generation
        self.signingKeys = signingKeys
        self.users = users
        self.serviceKeys = serviceKeys
        // CSRF secrets are derived from the signing keys, so every instance agrees without another
        // setting; like tokens, CSRF tokens are made with the first key and accepted from any.
        self.csrfKeys = signingKeys.map { key in
            SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Array("tokengate csrf".utf8), using: SymmetricKey(data: key.secret)))
        }
        self.verifier = TokenVerifier(
            signingKeys: signingKeys,
            issuer: configuration.issuer,
            audience: configuration.audience,
            tokenTTL: configuration.tokenTTL,
            leeway: configuration.clockLeeway
        )
        self.issuer = TokenIssuer(
            signingKey: signingKeys[0],
            issuer: configuration.issuer,
            audience: configuration.audience,
            tokenTTL: configuration.tokenTTL
        )
    }
}

/// The `Secrets` in force, shared by every copy of the service.
private final class LoadedFiles: Sendable {
    private let state: Mutex<Secrets>

    init(_ secrets: Secrets) { state = Mutex(secrets) }

    var current: Secrets { state.withLock { $0 } }

    func replace(with secrets: Secrets) { state.withLock { $0 = secrets } }
}
