import Foundation
import Logging
import RedisClient
import ServiceLifecycle
import Testing
import TokenGate

/// Where the Cluster tests find their cluster: `./scripts/test` starts 3 primaries with a replica
/// each and exports their URL.
enum TestCluster {
    static var url: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["TOKENGATE_TEST_CLUSTER_URL"], !url.isEmpty else {
                throw SetupError("TOKENGATE_TEST_CLUSTER_URL is not set: run ./scripts/test, which starts a Redis Cluster")
            }
            return url
        }
    }

    static func client() throws -> any RedisClient { try TestRedis.client(url: try url) }

    /// A plain client of one node.
    static func node(_ address: RedisAddress) throws -> any RedisClient { try TestRedis.client(url: "redis://\(address)/0") }

    /// The primary serving `key` (the others answer MOVED).
    static func owner(of key: String, among primaries: [RedisNodeClient]) async throws -> RedisAddress? {
        for primary in primaries where (try? await primary.send(["EXISTS", key])) != nil {
            return primary.address
        }
        return nil
    }

    /// Waits until every node says the cluster is ok and every shard has a primary and a replica in
    /// sync (a failover leaves the old primary resynchronising for a while).
    static func whole(_ redis: any RedisClient) async throws -> Bool {
        try await eventually(timeout: .seconds(30)) {
            let primaries = try await redis.primaries()
            guard primaries.count == 3 else { return false }
            var views: [ClusterSlotMap?] = []
            for primary in primaries {
                guard case .primary(let replicas)? = RedisRole(try await primary.send(["ROLE"])), replicas.count == 1 else { return false }
                views.append(ClusterSlotMap(shards: try await primary.send(["CLUSTER", "SHARDS"])))
                guard try await primary.send(["CLUSTER", "INFO"]).string?.contains("cluster_state:ok") == true else { return false }
                // The replica in sync (a manual failover needs it), and it agrees the cluster is ok.
                let replica = try node(replicas[0])
                defer { replica.shutdown() }
                guard case .replica(_, linkUp: true)? = RedisRole(try await replica.send(["ROLE"])),
                    try await replica.send(["CLUSTER", "INFO"]).string?.contains("cluster_state:ok") == true
                else { return false }
                views.append(ClusterSlotMap(shards: try await replica.send(["CLUSTER", "SHARDS"])))
            }
            // Every node sees the same primary for every slot: no failover still settling.
            let owners = views.map { view in view.map { map in (0..<HashSlot.count).map { map.primary(for: HashSlot($0)!) } } }
            guard let first = owners.first, let reference = first, !reference.contains(nil) else { return false }
            return owners.allSatisfy { $0 == reference }
        }
    }
}

/// One test at a time: moving a slot or failing a shard over changes the cluster for everything after.
@Suite("Redis Cluster: 3 primaries with a replica each, on loopback", .serialized)
struct ClusterTests {
    let keys = KeyLayout(prefix: TestRedis.uniquePrefix())

    @Test("every key the store writes for a user is in that user's slot, as Redis computes it (CLUSTER KEYSLOT)")
    func oneSlotPerUser() async throws {
        let redis = try TestCluster.client()
        defer { redis.shutdown() }
        let store = SessionStore(redis: redis, keys: keys, logger: Logger(label: "test"))
        // Apps' own ids too: a `{` or `}` in an id must not move its keys to another slot.
        let users = ["alice", "bob", "carol", "dave", "{x}", "x}", "Carol Smith", "Zoë"]
        for user in users {
            for _ in 0..<3 {
                try await store.create(
                    user: user,
                    sid: Identifier.random(),
                    jti: Identifier.random(),
                    ttl: 60,
                    userAgent: "test",
                    address: "127.0.0.1"
                )
            }
        }
        let written = try await TestRedis.keys(redis, matching: "\(keys.prefix)*")
        #expect(written.count == users.count * (1 + 3 * 2), "an index, and a session and a token per login, for each user")
        var slotsByUser: [String: Set<Int64>] = [:]
        for key in written {
            let slot = try #require(try await redis.send(["CLUSTER", "KEYSLOT", key]).int)
            #expect(Int64(HashSlot(key: key).rawValue) == slot, "our CRC16 agrees with Redis for \(key)")
            let user = String(key.dropFirst(keys.prefix.count + 1).prefix { $0 != "}" })
            slotsByUser[user, default: []].insert(slot)
        }
        #expect(slotsByUser.count == users.count && slotsByUser.values.allSatisfy { $0.count == 1 })
        #expect(slotsByUser[UserID.keyTag("{x}")] == [Int64(HashSlot(key: "{%7Bx%7D}").rawValue)])
        // Operator commands walk every primary: all sessions are counted wherever their users live.
        #expect(try await StoreInspector(redis: redis, keys: keys).liveSessionCount() == users.count * 3)
        #expect(Set(try await redis.primaries().map(\.address)).count == 3)
    }

    @Test("a slot being migrated: ASK sends the script to the importing node after ASKING; once moved, MOVED patches the map")
    func redirects() async throws {
        let redis = try TestCluster.client()
        defer { redis.shutdown() }
        #expect(try await TestCluster.whole(redis))
        let script = RedisScript(name: "set", source: "redis.call('SET', KEYS[1], ARGV[1], 'EX', 60) return redis.call('GET', KEYS[1])")
        let key = keys.sessionIndex(user: "migrating")
        let slot = HashSlot(key: key)
        let primaries = try await redis.primaries()
        let number = String(slot.rawValue)
        for primary in primaries { _ = try await primary.send(["CLUSTER", "SETSLOT", number, "STABLE"]) }  // no migration left over
        let from = try #require(try await TestCluster.owner(of: key, among: primaries))
        let to = try #require(primaries.map(\.address).first { $0 != from })
        let fromNode = try TestCluster.node(from)
        let toNode = try TestCluster.node(to)
        defer {
            fromNode.shutdown()
            toNode.shutdown()
        }
        let fromID = try #require(try await fromNode.send(["CLUSTER", "MYID"]).string)
        let toID = try #require(try await toNode.send(["CLUSTER", "MYID"]).string)
        #expect(try await toNode.send(["CLUSTER", "SETSLOT", number, "IMPORTING", fromID]) == .status("OK"))
        #expect(try await fromNode.send(["CLUSTER", "SETSLOT", number, "MIGRATING", toID]) == .status("OK"))
        // The key is not on the source: it answers ASK, and the script runs on the importing node.
        #expect(try await redis.run(script, keys: [key], arguments: ["asked"]) == .bulk(Array("asked".utf8)))
        // The slot moves for good; the client's map still says the source: MOVED, patched, run there.
        for node in [toNode, fromNode] { _ = try await node.send(["CLUSTER", "SETSLOT", number, "NODE", toID]) }
        #expect(try await toNode.send(["GET", key]).string == "asked", "the asked script ran on the importing node")
        #expect(try await redis.run(script, keys: [key], arguments: ["moved"]) == .bulk(Array("moved".utf8)))
        #expect(try await toNode.send(["GET", key]).string == "moved")
        #expect(redis.statistics.redirects >= 2, "the ASK and the MOVED were followed")
        // Back where it was (empty again), so the cluster is as the other tests expect it.
        _ = try await toNode.send(["DEL", key])
        #expect(try await fromNode.send(["CLUSTER", "SETSLOT", number, "IMPORTING", toID]) == .status("OK"))
        #expect(try await toNode.send(["CLUSTER", "SETSLOT", number, "MIGRATING", fromID]) == .status("OK"))
        for node in [fromNode, toNode] { _ = try await node.send(["CLUSTER", "SETSLOT", number, "NODE", fromID]) }
        #expect(try await eventually { (try? await redis.run(script, keys: [key], arguments: ["back"])) == .bulk(Array("back".utf8)) })
        #expect(try await fromNode.send(["GET", key]).string == "back")
        _ = try await redis.send(["DEL", key], key: key)
    }

    @Test("a shard fails over (CLUSTER FAILOVER TAKEOVER on its replica): commands follow to the new primary by themselves")
    func failover() async throws {
        var logger = Logger(label: "test.cluster")
        logger.logLevel = .critical
        let redis = try RedisConfiguration(url: try TestCluster.url).makeClient(logger: logger)
        let service = Task { try await redis.run() }
        defer {
            service.cancel()
            redis.shutdown()
        }
        #expect(try await TestCluster.whole(redis))
        let key = keys.sessionIndex(user: "failover")
        _ = try await redis.send(["SET", key, "before", "EX", "60"], key: key)
        let primaries = try await redis.primaries()
        let owner = try #require(try await TestCluster.owner(of: key, among: primaries))
        let primary = try #require(primaries.first { $0.address == owner })
        guard case .primary(let replicas)? = RedisRole(try await primary.send(["ROLE"])), let replica = replicas.first else {
            Issue.record("the shard has no replica")
            return
        }
        let replicaNode = try TestCluster.node(replica)
        defer { replicaNode.shutdown() }
        // TAKEOVER: promoted at once, without the old primary's handshake (which can time out right
        // after a resync); the old primary follows the higher epoch and becomes its replica.
        #expect(try await replicaNode.send(["CLUSTER", "FAILOVER", "TAKEOVER"]) == .status("OK"))
        let promoted = try await eventually(timeout: .seconds(10)) { RedisRole(try await replicaNode.send(["ROLE"]))?.isPrimary == true }
        #expect(promoted, "the replica is promoted")
        let followed = try await eventually(timeout: .seconds(10)) {
            (try? await redis.send(["SET", key, "after", "EX", "60"], key: key)) == .status("OK")
        }
        #expect(followed, "writes reach the shard's primary of the moment")
        // Once the cluster has settled, the client reads what it wrote, from whichever node serves the slot now.
        #expect(try await TestCluster.whole(redis))
        #expect(try await redis.send(["GET", key], key: key).string == "after")
        #expect(try await eventually { redis.statistics.failovers >= 1 }, "the new primary is seen in the slot map")
        _ = try await redis.send(["DEL", key], key: key)
        #expect(try await TestCluster.whole(redis))
    }

}
