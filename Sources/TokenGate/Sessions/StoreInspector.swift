public import RedisClient

/// Operator checks over the whole key space (`tokengate doctor`, `/metrics`, start-up warnings).
///
/// These walk the key space with `SCAN`, never `KEYS`, so Redis keeps serving while they run,
/// on every primary in turn (a key's own commands go to the primary the scan found it on).
public struct StoreInspector: Sendable {
    private let redis: any RedisClient
    private let keys: KeyLayout

    /// Creates an inspector.
    public init(redis: any RedisClient, keys: KeyLayout) {
        self.redis = redis
        self.keys = keys
    }

    /// What `doctor` found.
    public struct Report: Sendable, Equatable {
        /// Keys under the prefix that have no TTL (there should be none).
        public var keysWithoutTTL: [String] = []
        /// Index entries (`index key`, `sid`) whose session key is gone.
        public var danglingIndexEntries: [String] = []
        /// Keys looked at.
        public var keysScanned = 0
    }

    /// Redis's `maxmemory-policy` (the first primary's that is not `noeviction`, if any).
    public func maxmemoryPolicy() async throws(RedisError) -> String {
        var policy = "unknown"
        for node in try await redis.primaries() {
            policy = try await node.send(["CONFIG", "GET", "maxmemory-policy"]).array?.last?.string ?? "unknown"
            if policy != "noeviction" { break }
        }
        return policy
    }

    /// Scans every key under the prefix for missing TTLs and every index for dangling entries.
    public func doctor() async throws(RedisError) -> Report {
        var report = Report()
        try await scan(pattern: keys.allKeysPattern) { (redis: RedisNodeClient, batch: [String]) async throws(RedisError) -> Bool in
            report.keysScanned += batch.count
            for key in batch {
                let ttl = try await redis.send(["TTL", key]).int ?? -2
                if ttl == -1 { report.keysWithoutTTL.append(key) }
                if let user = keys.user(inIndexKey: key) {
                    let now = try await milliseconds(on: redis)
                    let members = try await redis.send(["ZRANGEBYSCORE", key, String(now), "+inf"]).array ?? []
                    for member in members {
                        guard let sid = member.string else { continue }
                        if try await redis.send(["EXISTS", keys.session(user: user, sid: sid)]).int == 0 {
                            report.danglingIndexEntries.append("\(key) \(sid)")
                        }
                    }
                }
            }
            return true
        }
        return report
    }

    /// A server's clock in Unix milliseconds: what index scores (session expiry times) are measured in.
    private func milliseconds(on redis: RedisNodeClient) async throws(RedisError) -> Int64 {
        let time = try await redis.send(["TIME"]).array ?? []
        return (time.first?.int ?? 0) * 1000 + (time.last?.int ?? 0) / 1000
    }

    /// Live sessions across all users, counted from the indexes. Stops after `limit` SCAN steps
    /// (1,000 keys each), so the count is a lower bound on very large key spaces.
    public func liveSessionCount(limit: Int = 100) async throws(RedisError) -> Int {
        var total = 0
        var steps = 0
        try await scan(pattern: keys.sessionIndexPattern) { (redis: RedisNodeClient, batch: [String]) async throws(RedisError) -> Bool in
            steps += 1
            let now = try await milliseconds(on: redis)
            for key in batch {
                total += Int(try await redis.send(["ZCOUNT", key, String(now), "+inf"]).int ?? 0)
            }
            return steps < limit
        }
        return total
    }

    /// Walks the key space of every primary with SCAN; `body` gets the node and a batch of its
    /// keys, and returns false to stop early.
    private func scan(pattern: String, _ body: (RedisNodeClient, [String]) async throws(RedisError) -> Bool) async throws(RedisError) {
        for node in try await redis.primaries() {
            var cursor = "0"
            repeat {
                let reply = try await node.send(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"])
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let batch = parts[1].array else {
                    throw RedisError(.protocolError, "unexpected SCAN reply")
                }
                guard try await body(node, batch.compactMap(\.string)) else { return }
                cursor = next
            } while cursor != "0"
        }
    }
}
