import Logging
import NIOCore
import RedisClient
import ServiceLifecycle
import Synchronization
import Testing
import TokenGate

/// The store contract, run against the real Redis store.
@Suite("session store on Redis")
struct SessionStoreTests {
    let redis: any RedisClient
    let keys: KeyLayout
    let store: SessionStore

    init() throws {
        redis = try TestRedis.client()
        keys = KeyLayout(prefix: TestRedis.uniquePrefix())
        store = SessionStore(redis: redis, keys: keys, logger: Logger(label: "test"))
    }

    private func token(_ user: String = "alice", sid: String, jti: String) -> VerifiedToken {
        VerifiedToken(user: user, sid: sid, jti: jti, issuedAt: 0, expiresAt: 0)
    }

    /// The credential (`UserStore.credential(of:)`) every password session here was opened with.
    private let credential = "cred-of-now"

    private func login(_ user: String = "alice", ttl: Int = 30) async throws -> VerifiedToken {
        let sid = Identifier.random()
        let jti = Identifier.random()
        try await store.create(user: user, sid: sid, jti: jti, ttl: ttl, userAgent: "test-agent", address: "127.0.0.1", credential: credential)
        return token(user, sid: sid, jti: jti)
    }

    private func limits(ttl: Int = 30, idle: Int = 1800, maxAge: Int = 43200, grace: Int = 2) -> SessionStore.Limits {
        SessionStore.Limits(ttl: ttl, idle: idle, maxAge: maxAge, reuseGrace: grace)
    }

    private func userKeys(_ user: String = "alice") async throws -> [String] {
        try await TestRedis.keys(redis, matching: "\(keys.prefix)*\(user)*")
    }

    @Test("login writes a session hash, a token key and an index entry, each readable and with a TTL")
    func layout() async throws {
        let live = try await login(ttl: 30)
        let sessionKey = keys.session(user: "alice", sid: live.sid)
        let tokenKey = keys.token(user: "alice", jti: live.jti)
        let indexKey = keys.sessionIndex(user: "alice")
        #expect(try await userKeys() == [indexKey, sessionKey, tokenKey].sorted())
        for key in [sessionKey, tokenKey, indexKey] {
            let ttl = try await TestRedis.ttl(redis, key)
            #expect(ttl > 0 && ttl <= 31, "\(key) ttl \(ttl)")
        }
        #expect(try await redis.send(["GET", tokenKey]).string == "1", "a live token's key holds 1: the token names its session")
        let fields = try await redis.send(["HGETALL", sessionKey]).array?.compactMap(\.string) ?? []
        #expect(fields.contains("created") && fields.contains("seen") && fields.contains("ua") && fields.contains("test-agent"))
        #expect(fields.contains("t:\(live.jti)"))
        #expect(try await redis.send(["ZSCORE", indexKey, live.sid]) != .null)
        #expect(try await store.check(live, activity: true, limits: limits()) == .accepted)
    }

    @Test("a token is refused when its key or its session is gone; keys written by earlier versions still count")
    func mismatch() async throws {
        let live = try await login()
        let other = try await login()
        let tokenKey = keys.token(user: "alice", jti: live.jti)
        #expect(try await store.check(token("bob", sid: live.sid, jti: live.jti), activity: true, limits: limits()) == .revoked)
        // Earlier versions stored the session id in the token's key (and '<sid> <at> <successor>' once rotated).
        _ = try await redis.send(["SET", tokenKey, live.sid, "KEEPTTL"])
        #expect(try await store.check(live, activity: true, limits: limits()) == .accepted)
        _ = try await redis.send(["SET", tokenKey, other.sid, "KEEPTTL"])
        #expect(try await store.check(live, activity: true, limits: limits()) == .revoked)
        _ = try await redis.send(["SET", tokenKey, "1", "KEEPTTL"])
        #expect(try await store.check(live, activity: true, limits: limits()) == .accepted)
        _ = try await redis.send(["DEL", keys.session(user: "alice", sid: live.sid)])
        #expect(try await store.check(live, activity: true, limits: limits()) == .revoked)
    }

    @Test("Redis expires every key of an unrefreshed session after its TTL")
    func expiry() async throws {
        let live = try await login(ttl: 1)
        #expect(try await eventually(timeout: .seconds(5)) { try await userKeys().isEmpty })
        #expect(try await store.check(live, activity: false, limits: limits()) == .revoked)
    }

    @Test("logout removes every key of that session and no other")
    func logout() async throws {
        let first = try await login()
        #expect(try await store.refresh(first, newJti: Identifier.random(), limits: limits(), credential: credential) == .accepted)
        let second = try await login()
        // `first` is spent (refreshed): its logout counts within the reuse grace, 10 s here so that
        // a machine busy with the other suites does not outlast it.
        #expect(try await store.logout(first, reuseGrace: 10) == .accepted)
        let left = try await userKeys()
        #expect(!left.contains { $0.contains(first.sid) || $0.contains(first.jti) })
        #expect(left.contains(keys.token(user: "alice", jti: second.jti)))
        #expect(try await store.check(first, activity: true, limits: limits()) == .revoked)
        #expect(try await store.logout(first, reuseGrace: 2) == .revoked)
    }

    @Test("logout-all leaves no key of the user at all")
    func logoutAll() async throws {
        var sessions: [VerifiedToken] = []
        for _ in 0..<5 { sessions.append(try await login()) }
        let bob = try await login("bob")
        #expect(try await store.logoutAll(sessions[2], reuseGrace: 2) == .accepted)
        #expect(try await userKeys("alice").isEmpty)
        #expect(try await store.check(bob, activity: true, limits: limits()) == .accepted)
    }

    @Test("logout-all of more sessions than one step deletes: all end at once, their keys go in batches")
    func largeLogoutAll() async throws {
        let count = SessionStore.inlineEndAll * 2 + 50
        var sessions: [VerifiedToken] = []
        for _ in 0..<count { sessions.append(try await login()) }
        let bob = try await login("bob")
        #expect(try await store.logoutAll(sessions[7], reuseGrace: 2) == .accepted)
        for token in [sessions[0], sessions[7], sessions[count - 1]] {
            #expect(try await store.check(token, activity: true, limits: limits()) == .revoked)
        }
        #expect(try await store.sessions(user: "alice").sessions.isEmpty)
        #expect(try await eventually(timeout: .seconds(10)) { try await userKeys("alice").isEmpty })
        #expect(try await store.check(bob, activity: true, limits: limits()) == .accepted)
        let again = try await login()
        #expect(try await store.check(again, activity: true, limits: limits()) == .accepted)

        // The operator's revoke-all takes the same way, reports every session and returns once
        // their keys are gone.
        for _ in 0..<(SessionStore.inlineEndAll + 1) { _ = try await login("carol") }
        #expect(try await store.revokeAll(user: "carol") == SessionStore.inlineEndAll + 1)
        #expect(try await userKeys("carol").isEmpty)
    }

    @Test("with a reaper, a large logout-all answers before its keys go, the reaper deletes them, and after shutdown the caller waits")
    func reaperDeletesAfterTheAnswer() async throws {
        let reaper = Reaper()
        let reaped = SessionStore(redis: redis, keys: keys, logger: Logger(label: "test"), reaper: reaper)
        let count = SessionStore.inlineEndAll + 50
        var sessions: [VerifiedToken] = []
        for _ in 0..<count { sessions.append(try await login()) }
        // Not running yet: the work waits in the reaper, so the answer comes with every key still there.
        #expect(try await reaped.logoutAll(sessions[0], reuseGrace: 2) == .accepted)
        #expect(try await reaped.check(sessions[count - 1], activity: true, limits: limits()) == .revoked)
        #expect(try await userKeys("alice").count > 2 * count)
        let group = ServiceGroup(services: [reaper], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(try await eventually { try await userKeys("alice").isEmpty })
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        // Stopped: it takes no more work, so a later large logout-all answers once its keys are gone.
        var more: [VerifiedToken] = []
        for _ in 0..<count { more.append(try await login()) }
        #expect(try await reaped.logoutAll(more[0], reuseGrace: 2) == .accepted)
        #expect(try await userKeys("alice").isEmpty)
    }

    @Test("revoking one session by id; an unknown id is reported as not found")
    func revoke() async throws {
        let first = try await login()
        let second = try await login()
        #expect(try await store.revoke(user: "alice", sid: first.sid))
        #expect(try await !store.revoke(user: "alice", sid: first.sid))
        #expect(try await !store.revoke(user: "bob", sid: second.sid))
        #expect(try await store.sessions(user: "alice").sessions.map(\.sid) == [second.sid])
        #expect(try await store.revokeAll(user: "alice") == 1)
        #expect(try await userKeys().isEmpty)
    }

    @Test("expired tokens are forgotten by later refreshes, so a session's hash stays bounded")
    func tokenFieldsBounded() async throws {
        let live = try await login(ttl: 30)
        let sessionKey = keys.session(user: "alice", sid: live.sid)
        // Sixty tokens of this session that expired a second ago, as a long-open page leaves them
        // (written directly: waiting for real expiry would also expire the session hash itself).
        let now = try await redis.send(["TIME"]).array?.compactMap(\.string) ?? []
        let nowMs = (Int64(now.first ?? "") ?? 0) * 1000 + (Int64(now.last ?? "") ?? 0) / 1000
        #expect(nowMs > 0)
        let expired = (0..<60).map { _ in "t:" + Identifier.random() }
        _ = try await redis.send(["HSET", sessionKey] + expired.flatMap { [$0, String(nowMs - 1000)] })

        let next = Identifier.random()
        #expect(try await store.refresh(live, newJti: next, limits: limits(), credential: credential) == .accepted)
        let fields = try await redis.send(["HKEYS", sessionKey]).array?.compactMap(\.string) ?? []
        #expect(Set(fields.filter { $0.hasPrefix("t:") }) == ["t:\(live.jti)", "t:\(next)"])
        #expect(try await store.check(live, activity: true, limits: limits()) == .accepted)
        #expect(try await store.check(token(sid: live.sid, jti: next), activity: true, limits: limits()) == .accepted)
    }

    @Test("a password session ends at its next refresh once its user's credential changed or is gone")
    func credentialBinding() async throws {
        let live = try await login()
        #expect(try await redis.send(["HGET", keys.session(user: "alice", sid: live.sid), "cred"]).string == credential)
        #expect(try await store.refresh(live, newJti: Identifier.random(), limits: limits(), credential: "another") == .revoked)
        #expect(try await store.check(live, activity: true, limits: limits()) == .revoked)
        #expect(try await userKeys().isEmpty, "its keys go with it")

        let rotating = try await login()
        let rotated = try await store.rotate(
            rotating,
            candidate: "t",
            candidateJti: Identifier.random(),
            activity: true,
            limits: limits(),
            credential: "another"
        )
        #expect(rotated.check == .revoked && rotated.successor == nil)

        let gone = try await login()
        #expect(try await store.refresh(gone, newJti: Identifier.random(), limits: limits(), credential: nil) == .revoked)

        // Written by an earlier version (no credential recorded): lives while its user does.
        let sid = Identifier.random()
        let jti = Identifier.random()
        try await store.create(user: "alice", sid: sid, jti: jti, ttl: 30, userAgent: "", address: "")
        let older = token(sid: sid, jti: jti)
        #expect(try await store.refresh(older, newJti: Identifier.random(), limits: limits(), credential: "any") == .accepted)
        #expect(try await store.refresh(older, newJti: Identifier.random(), limits: limits(), credential: nil) == .revoked)

        // Started by the service API: the users file does not matter.
        let serviceSid = Identifier.random()
        let serviceJti = Identifier.random()
        try await store.create(user: "alice", sid: serviceSid, jti: serviceJti, ttl: 30, userAgent: "", address: "", via: "app")
        let service = token(sid: serviceSid, jti: serviceJti)
        #expect(try await store.refresh(service, newJti: Identifier.random(), limits: limits(), credential: nil) == .accepted)
    }

    @Test("concurrent logins for one user all land in the index")
    func concurrentLogins() async throws {
        let sids = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<50 { group.addTask { try await login().sid } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        let listed = try await store.sessions(user: "alice").sessions
        #expect(Set(listed.map(\.sid)) == sids)
        #expect(try await redis.send(["ZCARD", keys.sessionIndex(user: "alice")]).int == 50)
    }

    @Test("close shortens every key to the grace period; a refresh within it restores the session")
    func closeAndResume() async throws {
        let live = try await login(ttl: 30)
        #expect(try await store.close(live, grace: 5, reuseGrace: 5) == .accepted)
        for key in try await userKeys() {
            // -2: gone already (a machine so busy that the grace passed since the listing) is short
            // enough too; -1 (no expiry) or more than the grace is not.
            let ttl = try await TestRedis.ttl(redis, key)
            #expect((ttl > 0 && ttl <= 5) || ttl == -2, "\(key) ttl \(ttl)")
        }
        let next = Identifier.random()
        #expect(try await store.refresh(live, newJti: next, limits: limits(), credential: credential) == .accepted)
        #expect(try await TestRedis.ttl(redis, keys.session(user: "alice", sid: live.sid)) > 20)
        #expect(try await TestRedis.ttl(redis, keys.token(user: "alice", jti: next)) > 20)
    }

    @Test("a closed page that does not come back leaves nothing after the grace period")
    func closeForGood() async throws {
        let live = try await login(ttl: 30)
        #expect(try await store.close(live, grace: 1, reuseGrace: 2) == .accepted)
        #expect(try await eventually(timeout: .seconds(5)) { try await userKeys().isEmpty })
    }

    @Test("a beacon that arrives after the reloaded page already refreshed changes nothing")
    func lateBeacon() async throws {
        let closing = try await login(ttl: 30)
        // The reloaded page's refresh wins the race: its token expires later than the closing one.
        #expect(try await store.refresh(closing, newJti: Identifier.random(), limits: limits(ttl: 60), credential: credential) == .accepted)
        #expect(try await store.close(closing, grace: 1, reuseGrace: 2) == .accepted)
        #expect(try await TestRedis.ttl(redis, keys.session(user: "alice", sid: closing.sid)) > 50)
    }

    @Test("rotation: one successor per parent, stored in the parent's key, the same for every use in the grace window")
    func rotation() async throws {
        let parent = try await login()
        let first = Identifier.random()
        let second = Identifier.random()
        let rotated = try await store.rotate(
            parent,
            candidate: "token-\(first)",
            candidateJti: first,
            activity: true,
            limits: limits(),
            credential: credential
        )
        #expect(rotated.check == .accepted && rotated.successor == "token-\(first)")
        let again = try await store.rotate(
            parent,
            candidate: "token-\(second)",
            candidateJti: second,
            activity: true,
            limits: limits(),
            credential: credential
        )
        #expect(again.check == .accepted && again.successor == "token-\(first)", "the first successor, not a second one")
        #expect(try await redis.send(["EXISTS", keys.token(user: "alice", jti: second)]).int == 0)
        let value = try await redis.send(["GET", keys.token(user: "alice", jti: parent.jti)]).string ?? ""
        let parts = value.split(separator: " ")
        #expect(parts.count == 2 && Int(parts[0]) != nil && parts[1] == "token-\(first)", "<rotated-at ms> <successor>: \(value)")
        #expect(try await redis.send(["GET", keys.token(user: "alice", jti: first)]).string == "1")
        #expect(try await TestRedis.ttl(redis, keys.token(user: "alice", jti: parent.jti)) > 0, "the spent token's key keeps its TTL")
        // A logout with the spent token still ends the session, every key of it (within the reuse
        // grace: 10 s, so that a machine busy with the other suites does not outlast it).
        #expect(try await store.logout(parent, reuseGrace: 10) == .accepted)
        #expect(try await userKeys().isEmpty)
    }

    @Test("a session holds at most maxTokensPerSession live tokens: a refresh flood retires the oldest, the newest live")
    func tokenCap() async throws {
        let cap = SessionStore.maxTokensPerSession
        let first = try await login()
        var newest: [VerifiedToken] = []
        var current = first
        for _ in 0..<(cap * 3) {
            let next = token("alice", sid: first.sid, jti: Identifier.random())
            #expect(try await store.refresh(current, newJti: next.jti, limits: limits(), credential: credential) == .accepted)
            newest.append(next)
            current = next
        }
        let session = keys.session(user: "alice", sid: first.sid)
        let fields = try await redis.send(["HKEYS", session]).array?.compactMap(\.string) ?? []
        let tokenFields = fields.filter { $0.hasPrefix("t:") }
        #expect(tokenFields.count <= cap, "\(tokenFields.count) live tokens in one session")
        let tokenKeys = try await TestRedis.keys(redis, matching: keys.tokenPrefix(user: "alice") + "*")
        #expect(tokenKeys.count == tokenFields.count, "every listed token has its key and no retired one kept it")
        #expect(try await store.check(first, activity: false, limits: limits()) == .revoked, "the oldest was retired")
        for token in newest.suffix(cap / 2) { #expect(try await store.check(token, activity: false, limits: limits()) == .accepted) }
        for key in tokenKeys { #expect(try await TestRedis.ttl(redis, key) > 0, "\(key) has a TTL") }
    }

    @Test("rotation: a spent token used after the grace window ends its session and no other")
    func replay() async throws {
        let victim = try await login()
        let other = try await login()
        let next = Identifier.random()
        _ = try await store.rotate(victim, candidate: "t", candidateJti: next, activity: true, limits: limits(grace: 0), credential: credential)
        var check = SessionStore.Check.accepted
        #expect(
            try await eventually(timeout: .seconds(2)) {
                check = try await store.rotate(
                    victim,
                    candidate: "u",
                    candidateJti: Identifier.random(),
                    activity: true,
                    limits: limits(grace: 0),
                    credential: credential
                )
                .check
                return check != .accepted
            }
        )
        #expect(check == .replayed)
        #expect(try await store.check(token(sid: victim.sid, jti: next), activity: true, limits: limits()) == .revoked)
        #expect(try await userKeys().allSatisfy { !$0.contains(victim.sid) && !$0.contains(victim.jti) && !$0.contains(next) })
        #expect(try await store.check(other, activity: true, limits: limits()) == .accepted)
    }

    @Test("the session cap ends the sessions closest to expiry to make room")
    func sessionCap() async throws {
        var sessions: [VerifiedToken] = []
        for ttl in [10, 20, 30] {
            let sid = Identifier.random()
            let jti = Identifier.random()
            try await store.create(user: "alice", sid: sid, jti: jti, ttl: ttl, userAgent: "", address: "", maxSessions: 2)
            sessions.append(token(sid: sid, jti: jti))
        }
        #expect(try await store.check(sessions[0], activity: false, limits: limits()) == .revoked)
        #expect(try await store.check(sessions[1], activity: false, limits: limits()) == .accepted)
        #expect(try await store.check(sessions[2], activity: false, limits: limits()) == .accepted)
        #expect(try await redis.send(["ZCARD", keys.sessionIndex(user: "alice")]).int == 2)
        #expect(try await userKeys().allSatisfy { !$0.contains(sessions[0].sid) && !$0.contains(sessions[0].jti) })
    }

    @Test("refreshes do not count as activity: an idle session ends and its keys go")
    func idle() async throws {
        // Tokens live 4 s and the idle limit is 2 s: the idle limit ends it, even if a busy machine
        // stalls the loop for a few seconds (a token that expired first would answer .revoked).
        var live = try await login(ttl: 4)
        var result = SessionStore.Check.accepted
        let ended = try await eventually(timeout: .seconds(8)) {
            let next = Identifier.random()
            result = try await store.refresh(live, newJti: next, limits: limits(ttl: 4, idle: 2), credential: credential)
            if result == .accepted { live = token(sid: live.sid, jti: next) }
            return result != .accepted
        }
        #expect(ended && result == .idle)
        #expect(try await userKeys().isEmpty)
    }

    @Test("user activity keeps a session past the idle limit")
    func activity() async throws {
        // Idle limit 4 s, activity every ~0.5 s for 6 s: a stall of up to ~2.5 s on a loaded machine
        // (`seen` has whole seconds) still leaves the session live.
        var live = try await login(ttl: 5)
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(6) {
            #expect(try await store.check(live, activity: true, limits: limits(idle: 4)) == .accepted)
            let next = Identifier.random()
            #expect(try await store.refresh(live, newJti: next, limits: limits(ttl: 5, idle: 4), credential: credential) == .accepted)
            live = token(sid: live.sid, jti: next)
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    @Test("past the absolute max age the session is refused and deleted")
    func maxAge() async throws {
        let live = try await login(ttl: 30)
        var result = SessionStore.Check.accepted
        let ended = try await eventually(timeout: .seconds(5)) {
            result = try await store.check(live, activity: true, limits: limits(maxAge: 1))
            return result != .accepted
        }
        #expect(ended && result == .tooOld)
        #expect(try await userKeys().isEmpty)
    }

    @Test("a login takes a slot in three counters: failures refuse, checks in flight make others wait, a success gives its slot back")
    func loginAttempts() async throws {
        let limits = SessionStore.LoginLimits(perUserAndAddress: 2, perUser: 3, perAddress: 100, window: 60)
        var attempts: [String: [SessionStore.LoginAttempt]] = [:]
        func begin(_ address: String = "10.9.9.9") async throws -> SessionStore.LoginAdmission {
            let attempt = SessionStore.LoginAttempt(user: "alice", address: address)
            let admission = try await store.beginLoginAttempt(attempt, limits: limits)
            if admission == .admitted { attempts[address, default: []].append(attempt) }
            return admission
        }
        func end(failed: Bool, _ address: String = "10.9.9.9") async throws {
            try await store.endLoginAttempt(attempts[address]!.removeFirst(), failed: failed, limits: limits)
        }
        func field(_ key: String, _ name: String) async throws -> Int {
            Int(try await redis.send(["HGET", key, name]).string ?? "0") ?? 0
        }
        /// The attempts holding a slot in a counter: its fields but the failures.
        func inFlight(_ key: String) async throws -> Int {
            (try await redis.send(["HKEYS", key]).array ?? []).filter { $0.string != "f" }.count
        }
        let pair = keys.failedLogins(user: "alice", address: "10.9.9.9")
        let user = keys.failedLogins(user: "alice")
        // Two password checks in flight fill the pair's two slots: a third waits, and takes nothing.
        #expect(try await begin() == .admitted)
        #expect(try await begin() == .admitted)
        #expect(try await begin() == .busy)
        #expect(try await inFlight(user) == 2)
        #expect(try await inFlight(keys.failedLogins(address: "10.9.9.9")) == 2)
        // A right password gives its slot back; a wrong one keeps it as a failure.
        try await end(failed: false)
        try await end(failed: true)
        #expect(try await field(pair, "f") == 1)
        #expect(try await inFlight(pair) == 0)
        #expect(try await begin() == .admitted)
        try await end(failed: true)
        // Two failures of the pair: refused, with the seconds left of the window.
        guard case .refused(let wait) = try await begin() else {
            Issue.record("not refused")
            return
        }
        #expect(wait > 0 && wait <= 60)
        let ttl = try await TestRedis.ttl(redis, pair)
        #expect(ttl > 0 && ttl <= 60)
        // From another address the pair is fresh, but the user's loose limit (3) counts every address.
        #expect(try await begin("10.9.9.10") == .admitted)
        try await end(failed: true, "10.9.9.10")
        guard case .refused = try await begin("10.9.9.11") else {
            Issue.record("the per-user limit did not refuse")
            return
        }
        #expect(try await inFlight(keys.failedLogins(user: "alice", address: "10.9.9.11")) == 0, "a refused attempt takes no slot")
        // A counter left with no failure and nothing in flight is deleted.
        let bob = SessionStore.LoginAttempt(user: "bob", address: "10.9.9.9")
        #expect(try await store.beginLoginAttempt(bob, limits: limits) == .admitted)
        try await store.endLoginAttempt(bob, failed: false, limits: limits)
        #expect(try await redis.send(["EXISTS", keys.failedLogins(user: "bob", address: "10.9.9.9")]).int == 0)
    }

    @Test("taking or giving back an attempt's slots again changes nothing; a failure counts once")
    func loginAttemptRetries() async throws {
        let limits = SessionStore.LoginLimits(perUserAndAddress: 2, perUser: 10, perAddress: 10, window: 60)
        let attempt = SessionStore.LoginAttempt(user: "carol", address: "10.9.9.12")
        let pair = keys.failedLogins(user: "carol", address: "10.9.9.12")
        // A begin sent twice (a retry after a lost reply) holds one slot: a second attempt still fits.
        #expect(try await store.beginLoginAttempt(attempt, limits: limits) == .admitted)
        #expect(try await store.beginLoginAttempt(attempt, limits: limits) == .admitted)
        #expect(try await redis.send(["HLEN", pair]).int == 1)
        try await store.endLoginAttempt(attempt, failed: true, limits: limits)
        try await store.endLoginAttempt(attempt, failed: true, limits: limits)
        #expect(try await redis.send(["HGET", pair, "f"]).string == "1")
        #expect(try await redis.send(["HLEN", pair]).int == 1)
        // A slot left behind (an instance that died mid-check) is forgotten at its deadline.
        _ = try await redis.send(["HSET", pair, "dead-instance", "1"])
        let next = SessionStore.LoginAttempt(user: "carol", address: "10.9.9.12")
        #expect(try await store.beginLoginAttempt(next, limits: limits) == .admitted)
        #expect(try await redis.send(["HEXISTS", pair, "dead-instance"]).int == 0)
        try await store.endLoginAttempt(next, failed: false, limits: limits)
    }

    @Test("a login attempt that fails on one counter's shard fails at once and leaves no slot held once that shard answers")
    func loginAttemptPartialFailure() async throws {
        let limits = SessionStore.LoginLimits(perUserAndAddress: 2, perUser: 10, perAddress: 10, window: 60)
        let address = keys.failedLogins(address: "10.9.9.13")
        let lossy = LossyRedis(redis, losing: address)
        let reaper = Reaper()
        let store = SessionStore(redis: lossy, keys: keys, logger: Logger(label: "test"), reaper: reaper)
        func inFlight(_ key: String) async throws -> Int {
            (try await redis.send(["HKEYS", key]).array ?? []).filter { $0.string != "f" }.count
        }
        let group = ServiceGroup(services: [reaper], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // The address counter's shard "fails over": its scripts run, their replies are lost.
            for _ in 0..<5 {
                await #expect(throws: TokenGateError.storeUnavailable) {
                    try await store.beginLoginAttempt(SessionStore.LoginAttempt(user: "dave", address: "10.9.9.13"), limits: limits)
                }
            }
            // The slots taken on the other counters are given back, so the pair (limit 2) is not full.
            // The reaper gives each counter back by itself: poll both (through Sentinel the second
            // can come a moment after the first).
            #expect(try await eventually { try await inFlight(keys.failedLogins(user: "dave", address: "10.9.9.13")) == 0 })
            #expect(try await eventually { try await inFlight(keys.failedLogins(user: "dave")) == 0 })
            #expect(try await inFlight(address) == 5, "the lost replies' slots are held while their shard is away")
            // The shard answers again: what the failed attempts took there is given back within a moment.
            lossy.heal()
            #expect(try await eventually(timeout: .seconds(1)) { try await inFlight(address) == 0 })
            let attempt = SessionStore.LoginAttempt(user: "dave", address: "10.9.9.13")
            #expect(try await store.beginLoginAttempt(attempt, limits: limits) == .admitted)
            try await store.endLoginAttempt(attempt, failed: false, limits: limits)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test("the store fails closed when Redis cannot be reached")
    func unavailable() async throws {
        let dead = try TestRedis.client(url: "redis://127.0.0.1:\(try freePort())/0")
        defer { dead.shutdown() }
        let store = SessionStore(redis: dead, keys: keys, logger: Logger(label: "test"))
        await #expect(throws: TokenGateError.self) {
            _ = try await store.check(token(sid: Identifier.random(), jti: Identifier.random()), activity: true, limits: limits())
        }
    }
}

/// Runs everything on a real client but, until `heal()`, treats one key as a shard that fails over:
/// a `login_begin` on it runs and its reply is lost; any other script on it is lost before it runs.
private final class LossyRedis: RedisClient {
    private let base: any RedisClient
    private let key: String
    private let losing = Mutex(true)

    init(_ base: any RedisClient, losing key: String) {
        self.base = base
        self.key = key
    }

    func heal() { losing.withLock { $0 = false } }

    func run(
        _ script: RedisScript,
        keys: [String],
        arguments: [String],
        wait: ReplicaWait?,
        on eventLoop: (any EventLoop)?,
        _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void
    ) {
        guard keys.first == key && losing.withLock({ $0 }) else {
            return base.run(script, keys: keys, arguments: arguments, wait: wait, on: eventLoop, completion)
        }
        let lost = RedisError(.timeout, "reply lost (test)")
        guard script.name == "login_begin" else { return completion(.failure(lost)) }
        base.run(script, keys: keys, arguments: arguments, wait: wait, on: eventLoop) { _ in completion(.failure(lost)) }
    }

    func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue { try await base.send(command) }
    func primaries() async throws(RedisError) -> [RedisNodeClient] { try await base.primaries() }
    var statistics: RedisClientStatistics { base.statistics }
    func shutdown() {}
    func run() async throws {}
}
