import Testing

@testable import RedisClient

@Suite("Sentinel and ROLE replies, error codes")
struct SentinelParsingTests {
    @Test("ROLE: a primary with its replicas, a replica in sync or still connecting, a sentinel; anything else is not a role")
    func role() {
        let primary = RESPValue.array([
            .bulk(Array("master".utf8)), .integer(3_129_659),
            .array([.array([.bulk(Array("10.0.0.2".utf8)), .bulk(Array("6380".utf8)), .bulk(Array("3129242".utf8))])]),
        ])
        #expect(RedisRole(primary) == .primary(replicas: [RedisAddress(host: "10.0.0.2", port: 6380)]))
        #expect(RedisRole(primary)?.isPrimary == true)
        let replica = RESPValue.array([
            .bulk(Array("slave".utf8)), .bulk(Array("10.0.0.1".utf8)), .integer(6379), .bulk(Array("connected".utf8)), .integer(3_167_038),
        ])
        #expect(RedisRole(replica) == .replica(primary: RedisAddress(host: "10.0.0.1", port: 6379), linkUp: true))
        // During a failover a replica reconnects to its new primary: not in sync yet.
        let syncing = RESPValue.array([
            .bulk(Array("slave".utf8)), .bulk(Array("10.0.0.2".utf8)), .integer(6380), .bulk(Array("sync".utf8)), .integer(-1),
        ])
        #expect(RedisRole(syncing) == .replica(primary: RedisAddress(host: "10.0.0.2", port: 6380), linkUp: false))
        #expect(RedisRole(syncing)?.isPrimary == false)
        #expect(RedisRole(.array([.bulk(Array("sentinel".utf8)), .array([])])) == .sentinel)
        #expect(RedisRole(.status("OK")) == nil)
        #expect(RedisRole(.array([.bulk(Array("slave".utf8))])) == nil)
        #expect(RedisRole(.array([.bulk(Array("leader".utf8))])) == nil)
    }

    @Test("get-master-addr-by-name: an address, or nothing for an unknown name or a bad port")
    func primaryAddress() {
        let reply = RESPValue.array([.bulk(Array("127.0.0.1".utf8)), .bulk(Array("16421".utf8))])
        #expect(SentinelRedisClient.address(reply) == RedisAddress(host: "127.0.0.1", port: 16421))
        #expect(SentinelRedisClient.address(.null) == nil)
        #expect(SentinelRedisClient.address(.array([.bulk(Array("h".utf8)), .bulk(Array("0".utf8))])) == nil)
        #expect(SentinelRedisClient.address(.array([.bulk(Array("h".utf8))])) == nil)
    }

    @Test("+switch-master names the primary that moved; other messages name none")
    func switchMaster() {
        func message(_ channel: String, _ text: String) -> RESPValue {
            .array([.bulk(Array("message".utf8)), .bulk(Array(channel.utf8)), .bulk(Array(text.utf8))])
        }
        #expect(SentinelRedisClient.switchedPrimary(message("+switch-master", "tokengate 127.0.0.1 1 127.0.0.1 2")) == "tokengate")
        #expect(SentinelRedisClient.switchedPrimary(message("+sdown", "master tokengate 127.0.0.1 1")) == nil)
        #expect(SentinelRedisClient.switchedPrimary(message("+switch-master", "tokengate 127.0.0.1")) == nil)
    }

    @Test("an error reply's code is its first word; failover replies are role changes, script errors are not")
    func codes() {
        #expect(RedisError(.server, "READONLY You can't write against a read only replica.").code == .readOnly)
        #expect(RedisError(.server, "READONLY You can't write against a read only replica.").isRoleChange)
        #expect(RedisError(.server, "LOADING Redis is loading the dataset in memory").isRoleChange)
        #expect(RedisError(.server, "MASTERDOWN Link with MASTER is down").isRoleChange)
        #expect(RedisError(.server, "NOSCRIPT No matching script.").isNoScript)
        #expect(RedisError(.server, "MOVED 3999 127.0.0.1:6381").code == .moved)
        #expect(!RedisError(.server, "ERR user_script:1: Script attempted to access a non local key").isRoleChange)
        #expect(RedisError(.timeout, "READONLY").code == nil, "only error replies have codes")
    }
}
