import Testing

@testable import RedisClient

@Suite("Redis Cluster: hash slots, slot maps and redirects, without a server")
struct ClusterParsingTests {
    @Test("CRC16 (XMODEM) of the reference vector, and slots of known keys")
    func crc16() {
        var bytes = Array("123456789".utf8)
        let crc = bytes.withUnsafeMutableBufferPointer { HashSlot.crc16(UnsafeBufferPointer($0)[...]) }
        #expect(crc == 0x31C3)
        // Values Redis's CLUSTER KEYSLOT gives.
        #expect(HashSlot(key: "foo").rawValue == 12182)
        #expect(HashSlot(key: "bar").rawValue == 5061)
        #expect(HashSlot(key: "").rawValue == 0)
    }

    @Test("hash tags: the first {…} with something in it decides; an empty or unclosed one does not")
    func hashTags() {
        #expect(HashSlot(key: "{user1000}.following") == HashSlot(key: "{user1000}.followers"))
        #expect(HashSlot(key: "{user1000}.following") == HashSlot(key: "user1000"))
        #expect(HashSlot(key: "foo{}{bar}") != HashSlot(key: "bar"), "an empty tag: the whole key is hashed")
        #expect(HashSlot(key: "foo{{bar}}zap") == HashSlot(key: "{bar"), "the tag is between the first { and the next }")
        #expect(HashSlot(key: "foo{bar}{zap}") == HashSlot(key: "bar"))
        #expect(HashSlot(key: "foo{bar") == HashSlot(key: "foo{bar"))
        #expect(HashSlot(key: "foo{bar") != HashSlot(key: "bar"), "an unclosed tag: the whole key is hashed")
        // TokenGate's keys of one user share a slot.
        let keys = KeyNames(user: "alice")
        #expect(Set(keys.all.map { HashSlot(key: $0) }).count == 1)
        #expect(HashSlot(5) != nil && HashSlot(16383) != nil && HashSlot(16384) == nil && HashSlot(-1) == nil)
    }

    struct KeyNames {
        let user: String
        var all: [String] { ["tg:{\(user)}:s:abc", "tg:{\(user)}:t:def", "tg:{\(user)}:sessions", "tg:{\(user)}:ended:x"] }
    }

    private func bulk(_ text: String) -> RESPValue { .bulk(Array(text.utf8)) }

    private func node(_ port: Int, role: String, health: String, endpoint: String = "127.0.0.1") -> RESPValue {
        .array([
            bulk("id"), bulk("n\(port)"), bulk("port"), .integer(Int64(port)), bulk("ip"), bulk("127.0.0.1"), bulk("endpoint"),
            bulk(endpoint), bulk("role"), bulk(role), bulk("replication-offset"), .integer(100), bulk("health"), bulk(health),
        ])
    }

    private func shard(_ ranges: [(Int, Int)], _ nodes: [RESPValue]) -> RESPValue {
        .array([bulk("slots"), .array(ranges.flatMap { [.integer(Int64($0.0)), .integer(Int64($0.1))] }), bulk("nodes"), .array(nodes)])
    }

    @Test("CLUSTER SHARDS: each shard's online primary serves its ranges; replicas and failed nodes serve none")
    func shards() throws {
        let reply = RESPValue.array([
            shard([(0, 5460)], [node(7000, role: "master", health: "online"), node(7003, role: "replica", health: "online")]),
            shard([(5461, 10922)], [node(7001, role: "master", health: "online"), node(7004, role: "replica", health: "online")]),
            shard(
                [(10923, 16000), (16001, 16383)],
                [node(7002, role: "master", health: "online"), node(7005, role: "replica", health: "loading")]
            ),
        ])
        let map = try #require(ClusterSlotMap(shards: reply))
        #expect(map.primaries == [7000, 7001, 7002].map { RedisAddress(host: "127.0.0.1", port: $0) })
        #expect(map.coveredSlots == HashSlot.count)
        #expect(map.primary(for: HashSlot(0)!)?.port == 7000)
        #expect(map.primary(for: HashSlot(5461)!)?.port == 7001)
        #expect(map.primary(for: HashSlot(16383)!)?.port == 7002)
    }

    @Test(
        "a failover in progress: the failed old primary listed beside the new one is skipped; a shard with no primary online leaves its slots unknown"
    )
    func shardsDuringFailover() throws {
        let reply = RESPValue.array([
            shard([(0, 8191)], [node(7000, role: "master", health: "fail"), node(7003, role: "master", health: "online")]),
            shard([(8192, 16383)], [node(7001, role: "master", health: "fail"), node(7004, role: "replica", health: "online")]),
        ])
        let map = try #require(ClusterSlotMap(shards: reply))
        #expect(map.primary(for: HashSlot(100)!)?.port == 7003)
        #expect(map.primary(for: HashSlot(9000)!) == nil)
        #expect(map.coveredSlots == 8192)
        #expect(ClusterSlotMap(shards: .array([.array([bulk("slots"), .array([.integer(1)]), bulk("nodes"), .array([])])])) == nil)
        #expect(ClusterSlotMap(shards: .status("OK")) == nil)
    }

    @Test("CLUSTER SLOTS (before Redis 7): the first node of each range is its primary")
    func slots() throws {
        func range(_ start: Int, _ end: Int, _ ports: [Int]) -> RESPValue {
            .array([.integer(Int64(start)), .integer(Int64(end))] + ports.map { .array([bulk("127.0.0.1"), .integer(Int64($0)), bulk("id")]) })
        }
        let map = try #require(ClusterSlotMap(slots: .array([range(0, 100, [7000, 7003]), range(101, 16383, [7001, 7004])])))
        #expect(map.primary(for: HashSlot(100)!)?.port == 7000)
        #expect(map.primary(for: HashSlot(101)!)?.port == 7001)
        #expect(ClusterSlotMap(slots: .array([.array([.integer(5), .integer(1)])])) == nil)
    }

    @Test("MOVED patches one slot at once; ASK and MOVED replies parse, an empty host is the answering node's")
    func redirects() throws {
        var map = ClusterSlotMap(slots: .array([.array([.integer(0), .integer(16383), .array([bulk("127.0.0.1"), .integer(7000)])])]))!
        let moved = try #require(ClusterRedirect(RedisError(.server, "MOVED 3999 127.0.0.1:7002"), host: "10.0.0.1"))
        #expect(!moved.isAsk && moved.slot == HashSlot(3999) && moved.address == RedisAddress(host: "127.0.0.1", port: 7002))
        map.move(moved.slot, to: moved.address)
        #expect(map.primary(for: HashSlot(3999)!)?.port == 7002)
        #expect(map.primary(for: HashSlot(3998)!)?.port == 7000)
        let ask = try #require(ClusterRedirect(RedisError(.server, "ASK 12182 :7001"), host: "10.0.0.1"))
        #expect(ask.isAsk && ask.address == RedisAddress(host: "10.0.0.1", port: 7001))
        #expect(ClusterRedirect(RedisError(.server, "MOVED 99999 127.0.0.1:7002"), host: "h") == nil)
        #expect(ClusterRedirect(RedisError(.server, "MOVED 1 127.0.0.1"), host: "h") == nil)
        #expect(ClusterRedirect(RedisError(.server, "ERR wrong"), host: "h") == nil)
        #expect(ClusterRedirect(RedisError(.timeout, "MOVED 1 127.0.0.1:7000"), host: "h") == nil)
        #expect(RedisError(.server, "TRYAGAIN Multiple keys request during rehashing of slot").isRedirect)
        #expect(RedisError(.server, "CLUSTERDOWN The cluster is down").isRedirect)
        #expect(!RedisError(.server, "NOSCRIPT No matching script").isRedirect)
    }

    @Test(
        "one redirect path for scripts and commands: MOVED and ASK followed up to the limit; TRYAGAIN, CLUSTERDOWN and the limit fail and look the map up"
    )
    func route() throws {
        let moved = RedisError(.server, "MOVED 3999 127.0.0.1:7002")
        let ask = RedisError(.server, "ASK 12182 :7001")
        #expect(ClusterRoute(after: moved, from: "h", redirects: 0) == .follow(ClusterRedirect(moved, host: "h")!))
        #expect(ClusterRoute(after: ask, from: "10.0.0.1", redirects: 4) == .follow(ClusterRedirect(ask, host: "10.0.0.1")!))
        guard case .follow(let asked) = ClusterRoute(after: ask, from: "10.0.0.1", redirects: 0) else {
            Issue.record("ASK not followed")
            return
        }
        #expect(asked.isAsk && asked.address == RedisAddress(host: "10.0.0.1", port: 7001))
        // The limit: the sixth redirect is not followed, and the map is looked up.
        #expect(ClusterRoute.maximumRedirects == 5)
        #expect(ClusterRoute(after: moved, from: "h", redirects: 5) == .fail(lookUp: true))
        #expect(ClusterRoute(after: ask, from: "h", redirects: 5) == .fail(lookUp: true))
        // Did not run, and retrying at once would be a hot loop: fail, and look the map up.
        #expect(
            ClusterRoute(after: RedisError(.server, "TRYAGAIN Multiple keys request during rehashing of slot"), from: "h", redirects: 0)
                == .fail(lookUp: true)
        )
        #expect(ClusterRoute(after: RedisError(.server, "CLUSTERDOWN The cluster is down"), from: "h", redirects: 0) == .fail(lookUp: true))
        #expect(ClusterRoute(after: RedisError(.server, "MOVED 99999 127.0.0.1:7002"), from: "h", redirects: 0) == .fail(lookUp: true))
        // Anything else is the command's own failure.
        #expect(ClusterRoute(after: RedisError(.server, "ERR wrong number of arguments"), from: "h", redirects: 0) == .fail(lookUp: false))
        #expect(ClusterRoute(after: RedisError(.server, "NOSCRIPT No matching script"), from: "h", redirects: 0) == .fail(lookUp: false))
        #expect(ClusterRoute(after: RedisError(.timeout, "MOVED 1 127.0.0.1:7000"), from: "h", redirects: 0) == .fail(lookUp: false))
    }
}
