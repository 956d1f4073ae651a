public import CoreMetrics
public import Logging
public import NIOCore
public import RedisClient
import Synchronization

/// Sessions and tokens in Redis: every operation is one Lua script from `Scripts`, one round trip.
///
/// Any Redis failure becomes `store_unavailable`: a request is admitted only after Redis said yes.
public struct SessionStore: Sendable {
    private let redis: any RedisClient
    private let keys: KeyLayout
    /// What a write that must survive a failover waits for (`TOKENGATE_REDIS_WAIT`).
    private let replicaWait: ReplicaWait?
    private let logger: Logger
    private let outageLog = Throttle(every: .seconds(5))
    /// Deletes the keys of a large logout-all after its answer; nil: the caller waits for them.
    private let reaper: Reaper?
    /// Counts every Redis failure (`DomainMetric.redisErrors`).
    private let redisErrors: Counter

    /// Creates a store over a Redis client and a key layout.
    /// With a running `reaper`, a large logout-all answers before its keys are deleted; without one
    /// (an operator's command, a test) it answers once they are. With `replicaWait`, logins,
    /// refreshes, rotations, logouts and revocations answer only once that many replicas confirmed
    /// them (else `store_unavailable`), so an answered logout survives a failover.
    /// Redis failures are counted through `metrics`.
    public init(
        redis: any RedisClient,
        keys: KeyLayout,
        logger: Logger,
        reaper: Reaper? = nil,
        replicaWait: ReplicaWait? = nil,
        metrics: any MetricsFactory = MetricsSystem.factory
    ) {
        self.redis = redis
        self.keys = keys
        self.replicaWait = replicaWait
        self.logger = logger
        self.reaper = reaper
        self.redisErrors = DomainMetric.redisErrors.counter(metrics)
    }

    /// What a check of a live token found.
    public enum Check: Sendable, Equatable {
        /// Live.
        case accepted
        /// Its key or session is gone.
        case revoked
        /// The session was idle too long (and has now ended).
        case idle
        /// The session passed its maximum age (and has now ended).
        case tooOld
        /// A rotated-out token came back after its grace window: the session has been ended as stolen.
        case replayed

        init(_ code: Int64?) {
            switch code {
            case 1: self = .accepted
            case -1: self = .idle
            case -2: self = .tooOld
            case -3: self = .replayed
            default: self = .revoked
            }
        }

        /// The contract's error for a refusal; nil when accepted.
        var error: TokenGateError? {
            switch self {
            case .accepted: nil
            case .revoked, .idle, .replayed: .tokenRevoked
            case .tooOld: .sessionExpired
            }
        }
    }

    /// Timings of a session: how long its tokens live, when it goes idle or too old, and how long a
    /// rotated-out token keeps working.
    public struct Limits: Sendable {
        /// Token TTL, seconds.
        public let ttl: Int
        /// Idle limit, seconds.
        public let idle: Int
        /// Absolute limit, seconds.
        public let maxAge: Int
        /// Reuse grace of a rotated-out token, seconds.
        public let reuseGrace: Int
        /// The limits as the scripts' arguments, made once (every verify passes three of them).
        let arguments: (ttl: String, idle: String, maxAge: String, graceMilliseconds: String)

        /// Creates limits.
        public init(ttl: Int, idle: Int, maxAge: Int, reuseGrace: Int) {
            self.ttl = ttl
            self.idle = idle
            self.maxAge = maxAge
            self.reuseGrace = reuseGrace
            self.arguments = (String(ttl), String(idle), String(maxAge), String(reuseGrace * 1000))
        }
    }

    /// Creates a session with its first token. With `maxSessions`, the user's sessions closest to
    /// expiry end first to make room. `via` names the service key that started the session (nil
    /// for a password login); `credential` is the fingerprint of the password that opened it (a
    /// password login: `UserStore.credential(of:)`), which later refreshes compare. Returns Redis's
    /// time at creation.
    @discardableResult
    public func create(
        user: String,
        sid: String,
        jti: String,
        ttl: Int,
        userAgent: String,
        address: String,
        maxSessions: Int? = nil,
        via: String? = nil,
        credential: String? = nil
    ) async throws(TokenGateError) -> Int64 {
        let reply = try await run(
            durable: true,
            Scripts.login,
            keys: [keys.session(user: user, sid: sid), keys.token(user: user, jti: jti), keys.sessionIndex(user: user)],
            arguments: [
                sid, jti, String(ttl), userAgent, address, String(maxSessions ?? 0), keys.sessionPrefix(user: user),
                keys.tokenPrefix(user: user), via ?? "", credential ?? "",
            ]
        )
        return reply.int ?? 0
    }

    /// The hot path: is this verified token still live? `activity` restarts the idle clock.
    /// `completion` runs on `eventLoop` (any loop when nil) after one Redis round trip, with no task
    /// and no chain of futures.
    public func check(
        _ token: VerifiedToken,
        activity: Bool,
        limits: Limits,
        on eventLoop: (any EventLoop)?,
        _ completion: @escaping @Sendable (Result<Check, TokenGateError>) -> Void
    ) {
        let call = verifyCall(token, activity: activity, limits: limits)
        // The client directly, with one closure: this is every protected request's path.
        redis.run(Scripts.verify, keys: call.keys, arguments: call.arguments, wait: nil, on: eventLoop) { result in
            switch result {
            case .success(let reply): completion(.success(Check(reply.int)))
            case .failure(let error): completion(.failure(failure(error, script: Scripts.verify)))
            }
        }
    }

    /// `check`, awaited.
    public func check(_ token: VerifiedToken, activity: Bool, limits: Limits) async throws(TokenGateError) -> Check {
        try await awaiting { check(token, activity: activity, limits: limits, on: nil, $0) }
    }

    /// The `verify` script's keys and arguments.
    private func verifyCall(_ token: VerifiedToken, activity: Bool, limits: Limits) -> (keys: [String], arguments: [String]) {
        (
            [
                keys.token(user: token.user, jti: token.jti), keys.session(user: token.user, sid: token.sid),
                keys.sessionIndex(user: token.user),
            ],
            [
                token.sid, activity ? "1" : "0", limits.arguments.idle, limits.arguments.maxAge, keys.tokenPrefix(user: token.user),
                limits.arguments.graceMilliseconds,
            ]
        )
    }

    /// The keys and leading arguments shared by `refresh` and `rotate`: the token, its session, the
    /// index and the successor's key; sid, successor jti, ttl, idle, max age, token prefix, grace.
    private func successorCall(_ token: VerifiedToken, newJti: String, limits: Limits) -> (keys: [String], arguments: [String]) {
        let user = token.user
        return (
            [
                keys.token(user: user, jti: token.jti), keys.session(user: user, sid: token.sid), keys.sessionIndex(user: user),
                keys.token(user: user, jti: newJti),
            ],
            [
                token.sid, newJti, limits.arguments.ttl, limits.arguments.idle, limits.arguments.maxAge, keys.tokenPrefix(user: user),
                limits.arguments.graceMilliseconds,
            ]
        )
    }

    /// Adds a successor token `newJti` to the token's session, if the token is still live.
    /// `credential` is the user's in the users file now (`UserStore.credential(of:)`; nil when the
    /// user is not in it): a password session opened with another credential, or whose user is gone,
    /// ends (`.revoked`); a session the service API started goes on.
    public func refresh(_ token: VerifiedToken, newJti: String, limits: Limits, credential: String?) async throws(TokenGateError) -> Check {
        let call = successorCall(token, newJti: newJti, limits: limits)
        return Check(try await run(durable: true, Scripts.refresh, keys: call.keys, arguments: call.arguments + [credential ?? ""]).int)
    }

    /// Per-request rotation: checks the token and returns its one successor. The first use stores
    /// `candidate` (a signed token with id `candidateJti`) as the successor; later uses inside the
    /// grace window get that same token back, whichever instance signed it. `credential` as for
    /// `refresh`. `completion` runs on `eventLoop` (any loop when nil).
    public func rotate(
        _ token: VerifiedToken,
        candidate: String,
        candidateJti: String,
        activity: Bool,
        limits: Limits,
        credential: String?,
        on eventLoop: (any EventLoop)?,
        _ completion: @escaping @Sendable (Result<(check: Check, successor: String?), TokenGateError>) -> Void
    ) {
        let call = successorCall(token, newJti: candidateJti, limits: limits)
        let arguments = call.arguments + [activity ? "1" : "0", candidate, credential ?? ""]
        run(durable: true, Scripts.rotate, keys: call.keys, arguments: arguments, on: eventLoop) { result in
            completion(
                result.flatMap { reply in
                    guard let items = reply.array, let code = items.first?.int else { return .failure(unexpected("rotate")) }
                    let check = Check(code)
                    guard check == .accepted else { return .success((check, nil)) }
                    guard items.count == 2, let successor = items[1].string else { return .failure(unexpected("rotate")) }
                    return .success((check, successor))
                }
            )
        }
    }

    /// `rotate`, awaited.
    public func rotate(
        _ token: VerifiedToken,
        candidate: String,
        candidateJti: String,
        activity: Bool,
        limits: Limits,
        credential: String?
    ) async throws(TokenGateError) -> (check: Check, successor: String?) {
        try await awaiting {
            rotate(token, candidate: candidate, candidateJti: candidateJti, activity: activity, limits: limits, credential: credential, on: nil, $0)
        }
    }

    /// Deletes the token's session and every key of it: `.accepted`; `.revoked` when the token was
    /// not live; `.replayed` for a token rotated out more than `reuseGrace` seconds ago (a stolen
    /// one: its session ends all the same, but the caller is refused).
    public func logout(_ token: VerifiedToken, reuseGrace: Int) async throws(TokenGateError) -> Check {
        let user = token.user
        let reply = try await run(
            durable: true,
            Scripts.logout,
            keys: [keys.token(user: user, jti: token.jti), keys.session(user: user, sid: token.sid), keys.sessionIndex(user: user)],
            arguments: [token.sid, keys.tokenPrefix(user: user), String(reuseGrace * 1000)]
        )
        return Check(reply.int)
    }

    /// Deletes every session of the token's user: `.accepted`, or as `logout` (a replayed spent token
    /// ends only its own session).
    public func logoutAll(_ token: VerifiedToken, reuseGrace: Int) async throws(TokenGateError) -> Check {
        let user = token.user
        let ended = keys.endedSessions(user: user, id: Identifier.random())
        let reply = try await run(
            durable: true,
            Scripts.logoutAll,
            keys: [keys.token(user: user, jti: token.jti), keys.sessionIndex(user: user), ended],
            arguments: [
                token.sid, keys.sessionPrefix(user: user), keys.tokenPrefix(user: user), String(Self.inlineEndAll), String(reuseGrace * 1000),
                String(Self.endAllKeyBudget),
            ]
        )
        let (count, pending) = try endedAll(reply)
        if pending {
            // The answer need not wait for the keys: every session has already ended.
            let store = self
            if reaper?.submit({ await store.reap(user: user, ended: ended) }) != true { await reap(user: user, ended: ended) }
        }
        return count > 0 ? .accepted : Check(Int64(count))
    }

    /// Shortens the token's session to `grace` seconds (the page is closing): `.accepted`, or as `logout`.
    public func close(_ token: VerifiedToken, grace: Int, reuseGrace: Int) async throws(TokenGateError) -> Check {
        let user = token.user
        let reply = try await run(
            Scripts.close,
            keys: [keys.token(user: user, jti: token.jti), keys.session(user: user, sid: token.sid), keys.sessionIndex(user: user)],
            arguments: [token.sid, String(grace), keys.tokenPrefix(user: user), token.jti, String(reuseGrace * 1000)]
        )
        return Check(reply.int)
    }

    /// Ends one of `user`'s sessions. False when it does not exist (or is not `user`'s).
    public func revoke(user: String, sid: String) async throws(TokenGateError) -> Bool {
        let reply = try await run(
            durable: true,
            Scripts.revokeSession,
            keys: [keys.session(user: user, sid: sid), keys.sessionIndex(user: user)],
            arguments: [sid, keys.tokenPrefix(user: user)]
        )
        return reply.int == 1
    }

    /// Ends every session of `user` and deletes their keys; returns how many there were.
    public func revokeAll(user: String) async throws(TokenGateError) -> Int {
        let ended = keys.endedSessions(user: user, id: Identifier.random())
        let reply = try await run(
            durable: true,
            Scripts.revokeAll,
            keys: [keys.sessionIndex(user: user), ended],
            arguments: [keys.sessionPrefix(user: user), keys.tokenPrefix(user: user), String(Self.inlineEndAll), String(Self.endAllKeyBudget)]
        )
        let (count, pending) = try endedAll(reply)
        // An operator's command (often a process that exits right after) waits for the keys.
        if pending { await reap(user: user, ended: ended) }
        return count
    }

    /// Live tokens one session may hold; a refresh or rotation beyond it retires the oldest. A
    /// page refreshes every 18 s of a 30 s token, so it holds two or three; per-request rotation
    /// holds one per request of the last `TOKEN_TTL`, bounded here so that no script's cost grows
    /// with what a client piled up.
    public static let maxTokensPerSession = 64

    /// Sessions a logout-all deletes in its own atomic step (when they hold at most
    /// `endAllKeyBudget` keys); with more, it ends them all at once by moving the index aside, and
    /// their keys are deleted afterwards, `reapBatch` sessions (at most about `endAllKeyBudget`
    /// keys) a call. Each step holds Redis for about a millisecond, whatever the sessions hold.
    public static let inlineEndAll = 200
    static let reapBatch = 200
    /// Keys one step of a logout-all deletes at most (a session is never split: one at the
    /// token cap, 64 tokens and its hash, always fits).
    public static let endAllKeyBudget = 1000

    /// Reads `endAll`'s reply `{sessions, 1 when their keys are left to reap}`.
    private func endedAll(_ reply: RESPValue) throws(TokenGateError) -> (count: Int, pending: Bool) {
        guard let items = reply.array, items.count == 2, let count = items[0].int, let pending = items[1].int else {
            throw unexpected("end_all")
        }
        return (Int(count), pending == 1)
    }

    /// Deletes the keys of the sessions in `ended`, a batch per script run, so that other clients'
    /// commands run in between. The sessions already ended; should this stop (the process exits,
    /// Redis fails), the keys still expire with their TTLs.
    private func reap(user: String, ended: String) async {
        let arguments = [keys.sessionPrefix(user: user), keys.tokenPrefix(user: user), String(Self.reapBatch), String(Self.endAllKeyBudget)]
        do {
            while try await run(Scripts.reap, keys: [ended], arguments: arguments).int ?? 0 > 0 {}
        } catch {
            logger.warning(
                "deleting the keys of ended sessions stopped; they expire with their TTLs",
                metadata: ["user": "\(UserID.headerValue(user))", "error": "\(error)"]
            )
        }
    }

    /// `user`'s live sessions, oldest first, and Redis's current time. `withTokens` lists each
    /// session's live tokens too (one `TTL` per token: for operators, not for a per-request route).
    public func sessions(user: String, withTokens: Bool = false) async throws(TokenGateError) -> (now: Int64, sessions: [SessionInfo]) {
        let reply = try await run(
            Scripts.sessions,
            keys: [keys.sessionIndex(user: user)],
            arguments: [keys.sessionPrefix(user: user), keys.tokenPrefix(user: user), withTokens ? "1" : "0"]
        )
        guard let items = reply.array, let now = items.first?.int else { throw unexpected("sessions") }
        var sessions: [SessionInfo] = []
        for item in items.dropFirst() {
            guard let parts = item.array, parts.count == 4, let sid = parts[0].string, let ttl = parts[1].int,
                let fields = parts[2].array, fields.count == 4, let tokenList = parts[3].array
            else { throw unexpected("sessions") }
            var tokens: [(jti: String, ttl: Int64)] = []
            for index in stride(from: 0, to: tokenList.count - 1, by: 2) {
                if let jti = tokenList[index].string, let left = tokenList[index + 1].int { tokens.append((jti, left)) }
            }
            sessions.append(
                SessionInfo(
                    sid: sid,
                    createdAt: Int64(fields[0].string ?? "") ?? 0,
                    lastSeen: Int64(fields[1].string ?? "") ?? 0,
                    expiresIn: ttl,
                    userAgent: fields[2].string ?? "",
                    address: fields[3].string ?? "",
                    tokens: tokens
                )
            )
        }
        sessions.sort { ($0.createdAt, $0.sid) < ($1.createdAt, $1.sid) }
        return (now, sessions)
    }

    /// The failed-login limits (`docs/security.md`), each over `window` seconds.
    public struct LoginLimits: Sendable {
        /// Failures of one username from one address: the tight limit.
        public var perUserAndAddress: Int
        /// Failures of one username from every address: the loose one.
        public var perUser: Int
        /// Failures from one address, any usernames.
        public var perAddress: Int
        /// Seconds a failure counts, from the first failure of a counter's window.
        public var window: Int

        /// Creates the limits.
        public init(perUserAndAddress: Int, perUser: Int, perAddress: Int, window: Int) {
            self.perUserAndAddress = perUserAndAddress
            self.perUser = perUser
            self.perAddress = perAddress
            self.window = window
        }
    }

    /// What `beginLoginAttempt` decided.
    public enum LoginAdmission: Equatable, Sendable {
        /// Check the password, then call `endLoginAttempt`.
        case admitted
        /// Every slot is taken by attempts whose password is being checked: ask again shortly.
        case busy
        /// Too many failures: refused for this many seconds.
        case refused(retryAfter: Int)
    }

    /// Attempts in flight longer than this are forgotten (an instance died during the check).
    static let staleAttemptMilliseconds = 30_000

    /// The three counters of a login attempt and their limits.
    private func loginCounters(user: String, address: String, limits: LoginLimits) -> [(key: String, limit: Int)] {
        [
            (keys.failedLogins(user: user, address: address), limits.perUserAndAddress),
            (keys.failedLogins(user: user), limits.perUser),
            (keys.failedLogins(address: address), limits.perAddress),
        ]
    }

    /// Takes a slot for one password check of `user` from `address` in each counter (three keys in
    /// different hash slots: three scripts, sent together). Admitted only when every counter has
    /// room; otherwise the slots taken are given back.
    public func beginLoginAttempt(user: String, address: String, limits: LoginLimits) async throws(TokenGateError) -> LoginAdmission {
        let counters = loginCounters(user: user, address: address, limits: limits)
        let replies = try await runTogether(
            counters.map { (Scripts.loginBegin, [$0.key], [String($0.limit), String(limits.window), String(Self.staleAttemptMilliseconds)]) }
        )
        var admitted: [String] = []
        var refusal: Int?
        var busy = false
        for (counter, reply) in zip(counters, replies) {
            guard let items = reply.array, let code = items.first?.int else { throw unexpected("login_begin") }
            switch code {
            case 0: admitted.append(counter.key)
            case 1: refusal = max(refusal ?? 0, Int(items.count > 1 ? items[1].int ?? 1 : 1))
            default: busy = true
            }
        }
        if admitted.count == counters.count { return .admitted }
        _ = try await runTogether(admitted.map { (Scripts.loginEnd, [$0], ["0", String(limits.window)]) })
        if let refusal { return .refused(retryAfter: refusal) }
        return busy ? .busy : .refused(retryAfter: 1)
    }

    /// Gives back the slots of an admitted attempt; with `failed`, counts a failure in each counter.
    public func endLoginAttempt(user: String, address: String, failed: Bool, limits: LoginLimits) async throws(TokenGateError) {
        let counters = loginCounters(user: user, address: address, limits: limits)
        _ = try await runTogether(counters.map { (Scripts.loginEnd, [$0.key], [failed ? "1" : "0", String(limits.window)]) })
    }

    /// Counts a wrong service key from `address`. Returns 0 while the address is under `limit`
    /// within `window` seconds, else the seconds until it is again.
    public func countWrongServiceKey(address: String, limit: Int, window: Int) async throws(TokenGateError) -> Int {
        let reply = try await run(Scripts.countAttempt, keys: [keys.failedServiceKeys(address: address)], arguments: [String(limit), String(window)])
        return Int(reply.int ?? 0)
    }

    /// Redis answers `PING`.
    public func ping() async -> Bool {
        (try? await redis.send(RedisCommand(["PING"]))) == .status("PONG")
    }

    /// Runs scripts concurrently (their commands pipelined on the connection); their replies in
    /// order. Any failure fails the whole.
    private func runTogether(_ calls: [(RedisScript, [String], [String])]) async throws(TokenGateError) -> [RESPValue] {
        let results = await withTaskGroup(of: (Int, Result<RESPValue, TokenGateError>).self) { group in
            for (index, call) in calls.enumerated() {
                group.addTask {
                    do throws(TokenGateError) {
                        return (index, .success(try await self.run(call.0, keys: call.1, arguments: call.2)))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var results = [Result<RESPValue, TokenGateError>?](repeating: nil, count: calls.count)
            for await (index, result) in group { results[index] = result }
            return results
        }
        return try results.map { result throws(TokenGateError) in
            guard let result else { throw TokenGateError.storeUnavailable }
            return try result.get()
        }
    }

    /// Runs a script; a `durable` one (a write that must survive a failover) waits for the
    /// replicas `replicaWait` names. `completion` runs on `eventLoop` (any loop when nil).
    private func run(
        durable: Bool = false,
        _ script: RedisScript,
        keys: [String],
        arguments: [String],
        on eventLoop: (any EventLoop)?,
        _ completion: @escaping @Sendable (Result<RESPValue, TokenGateError>) -> Void
    ) {
        redis.run(script, keys: keys, arguments: arguments, wait: durable ? replicaWait : nil, on: eventLoop) { result in
            completion(result.mapError { failure($0, script: script) })
        }
    }

    /// `run`, awaited.
    private func run(durable: Bool = false, _ script: RedisScript, keys: [String], arguments: [String]) async throws(TokenGateError) -> RESPValue {
        try await awaiting { run(durable: durable, script, keys: keys, arguments: arguments, on: nil, $0) }
    }

    /// Logs (throttled) and counts a Redis failure; the request fails closed.
    private func failure(_ error: RedisError, script: RedisScript) -> TokenGateError {
        if error.kind == .server && !error.isRoleChange {
            logger.error("Redis script failed", metadata: ["script": "\(script.name)", "error": "\(error.message)"])
        } else if outageLog.allow() {
            // At most one line per 5 s: an outage must not flood the log, but must show in it.
            logger.warning("Redis unavailable: answering 503", metadata: ["script": "\(script.name)", "error": "\(error.message)"])
        }
        redisErrors.increment()
        return .storeUnavailable
    }

    private func unexpected(_ what: String) -> TokenGateError {
        logger.error("unexpected reply from Redis", metadata: ["script": "\(what)"])
        return .storeUnavailable
    }
}

/// Lets an action through at most once per interval (for log lines during an outage).
final class Throttle: Sendable {
    private let interval: Duration
    private let last = Mutex<ContinuousClock.Instant?>(nil)

    init(every interval: Duration) { self.interval = interval }

    func allow() -> Bool {
        let now = ContinuousClock.now
        return last.withLock { last in
            if let previous = last, now - previous < interval { return false }
            last = now
            return true
        }
    }
}
