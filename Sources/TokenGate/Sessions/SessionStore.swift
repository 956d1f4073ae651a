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

    /// How long an attempt holds its slots at most: an instance that dies during the check, or
    /// cannot give them back before this, leaves nothing that blocks later than this.
    static let staleAttempt = Duration.seconds(30)

    /// One login's password check as the failed-login counters know it: who, from where, and the id
    /// its slots are held under, so that taking or giving them back again (a retry after a failure
    /// whose outcome is unknown) changes nothing.
    public struct LoginAttempt: Sendable {
        let user: String
        let address: String
        let id = Identifier.random()

        /// An attempt of `user` from `address` (the address as the limits count it).
        public init(user: String, address: String) {
            self.user = user
            self.address = address
        }
    }

    /// The three counters of a login attempt and their limits.
    private func loginCounters(_ attempt: LoginAttempt, limits: LoginLimits) -> [(key: String, limit: Int)] {
        [
            (keys.failedLogins(user: attempt.user, address: attempt.address), limits.perUserAndAddress),
            (keys.failedLogins(user: attempt.user), limits.perUser),
            (keys.failedLogins(address: attempt.address), limits.perAddress),
        ]
    }

    /// Takes a slot for `attempt` in each counter (three keys in different hash slots, so on Redis
    /// Cluster up to three shards: three scripts, sent together). Admitted only when every counter
    /// has room; otherwise the slots taken are given back. When any counter fails (its shard is
    /// failing over), the attempt fails at once with `store_unavailable`, and the slots it took, or
    /// may have taken (a script sent but not answered), are given back in the background
    /// (`giveBack`).
    public func beginLoginAttempt(_ attempt: LoginAttempt, limits: LoginLimits) async throws(TokenGateError) -> LoginAdmission {
        let counters = loginCounters(attempt, limits: limits)
        let stale = String(Self.staleAttempt.components.seconds * 1000)
        let results = await runEach(
            Scripts.loginBegin,
            counters.map { ([$0.key], [String($0.limit), String(limits.window), stale, attempt.id]) }
        )
        var admitted: [String] = []
        var refusal: Int?
        var busy = false
        var taken: [String] = []
        var failed: TokenGateError?
        for (counter, result) in zip(counters, results) {
            switch result {
            case .failure(let error):
                failed = failure(error, script: Scripts.loginBegin)
                if error.mayHaveRun { taken.append(counter.key) }
            case .success(let reply):
                guard let items = reply.array, let code = items.first?.int else {
                    failed = unexpected("login_begin")
                    taken.append(counter.key)
                    continue
                }
                switch code {
                case 0: admitted.append(counter.key)
                case 1: refusal = max(refusal ?? 0, Int(items.count > 1 ? items[1].int ?? 1 : 1))
                default: busy = true
                }
            }
        }
        if let failed {
            giveBack(attempt, keys: admitted + taken, failed: false, window: limits.window)
            throw failed
        }
        if admitted.count == counters.count { return .admitted }
        guard await giveBackNow(attempt, keys: admitted, failed: false, window: limits.window) else { throw .storeUnavailable }
        if let refusal { return .refused(retryAfter: refusal) }
        return busy ? .busy : .refused(retryAfter: 1)
    }

    /// Gives back the slots of an admitted attempt; with `failed`, counts a failure in each counter.
    /// A counter that fails is given back in the background until it is; the caller gets
    /// `store_unavailable`.
    public func endLoginAttempt(_ attempt: LoginAttempt, failed: Bool, limits: LoginLimits) async throws(TokenGateError) {
        let keys = loginCounters(attempt, limits: limits).map(\.key)
        guard await giveBackNow(attempt, keys: keys, failed: failed, window: limits.window) else { throw .storeUnavailable }
    }

    /// Gives back `attempt`'s slots in `keys` (counting a failure with `failed`) now; those that
    /// fail are left to `giveBack`. True when every one answered.
    private func giveBackNow(_ attempt: LoginAttempt, keys: [String], failed: Bool, window: Int) async -> Bool {
        let left = await giveBackOnce(attempt, keys: keys, failed: failed, window: window)
        if left.isEmpty { return true }
        giveBack(attempt, keys: left, failed: failed, window: window)
        return false
    }

    /// Sends `loginEnd` for each of `keys`; the keys it failed for.
    private func giveBackOnce(_ attempt: LoginAttempt, keys: [String], failed: Bool, window: Int) async -> [String] {
        let results = await runEach(Scripts.loginEnd, keys.map { ([$0], [failed ? "1" : "0", String(window), attempt.id]) })
        return zip(keys, results).compactMap { key, result in
            guard case .failure(let error) = result else { return nil }
            _ = failure(error, script: Scripts.loginEnd)
            return key
        }
    }

    /// Gives back `attempt`'s slots in `keys` in the background (the reaper's), sending each again,
    /// at most every 250 ms, until it answered or Redis has forgotten the slot anyway; so once a
    /// failed shard has a primary again, nothing of the attempt is held there for long. Without a
    /// reaper (an operator's command, a test), each is sent once.
    private func giveBack(_ attempt: LoginAttempt, keys: [String], failed: Bool, window: Int) {
        guard !keys.isEmpty else { return }
        let store = self
        // Redis forgets the slots by itself at the latest this long after they were taken.
        let forgotten = ContinuousClock.now + Self.staleAttempt
        let job: @Sendable () async -> Void = {
            var left = keys
            var pause = Duration.milliseconds(25)
            while !left.isEmpty && ContinuousClock.now + pause < forgotten {
                try? await Task.sleep(for: pause)
                left = await store.giveBackOnce(attempt, keys: left, failed: failed, window: window)
                pause = min(pause * 2, .milliseconds(250))
            }
        }
        if reaper?.submit(job) == true { return }
        let arguments = [failed ? "1" : "0", String(window), attempt.id]
        for key in keys { redis.run(Scripts.loginEnd, keys: [key], arguments: arguments, wait: nil, on: nil) { _ in } }
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

    /// Runs `script` once per (keys, arguments), concurrently (their commands pipelined on the
    /// connection); their results in order, each within the Redis timeout. Failures are not yet
    /// logged or counted (the caller does that, with `failure`).
    private func runEach(_ script: RedisScript, _ calls: [([String], [String])]) async -> [Result<RESPValue, RedisError>] {
        await withTaskGroup(of: (Int, Result<RESPValue, RedisError>).self) { group in
            for (index, call) in calls.enumerated() {
                // The do/catch lives in `result(of:)`: Swift 6.3's release builds miscompile a
                // child task that returns a tuple from inside `do throws(E)` (its index came back
                // out of range, and every login trapped), so the child only pairs the two.
                group.addTask { (index, await self.result(of: script, keys: call.0, arguments: call.1)) }
            }
            var results = [Result<RESPValue, RedisError>](repeating: .failure(RedisError(.unavailable, "not run")), count: calls.count)
            for await (index, result) in group { results[index] = result }
            return results
        }
    }

    /// One script's reply, or its error, as a value.
    private func result(of script: RedisScript, keys: [String], arguments: [String]) async -> Result<RESPValue, RedisError> {
        do throws(RedisError) {
            return .success(try await redis.run(script, keys: keys, arguments: arguments))
        } catch {
            return .failure(error)
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

extension RedisError {
    /// Whether a command that failed this way may have run all the same (it was sent and its answer
    /// never came), so that what it may have taken must be given back.
    fileprivate var mayHaveRun: Bool {
        switch kind {
        case .server, .connectionFailed, .unavailable, .shutdown: false
        default: true
        }
    }
}
