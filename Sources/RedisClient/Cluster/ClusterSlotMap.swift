/// Which primary serves each hash slot, from `CLUSTER SHARDS` (or `CLUSTER SLOTS` before Redis 7).
///
/// Only primaries are kept: reads go to primaries too (a replica answers for a revoked token).
public struct ClusterSlotMap: Sendable, Equatable {
    /// The primaries, each once.
    public private(set) var primaries: [RedisAddress] = []
    /// For each slot, its primary's index in `primaries` (-1: no primary known, e.g. a shard whose
    /// primary failed and no replica has been promoted yet).
    private var owners = [Int16](repeating: -1, count: HashSlot.count)

    /// An empty map: no slot has a primary.
    public init() {}

    /// The primary serving `slot`.
    public func primary(for slot: HashSlot) -> RedisAddress? {
        primaryIndex(for: slot).map { primaries[$0] }
    }

    /// The index in `primaries` of the primary serving `slot`.
    public func primaryIndex(for slot: HashSlot) -> Int? {
        let index = owners[Int(slot.rawValue)]
        return index < 0 ? nil : Int(index)
    }

    /// Slots that have a primary.
    public var coveredSlots: Int { owners.count { $0 >= 0 } }

    /// `slot` is served by `address` now (a `MOVED` reply): patched at once, before the next refresh.
    public mutating func move(_ slot: HashSlot, to address: RedisAddress) {
        owners[Int(slot.rawValue)] = index(of: address)
    }

    private mutating func index(of address: RedisAddress) -> Int16 {
        if let found = primaries.firstIndex(of: address) { return Int16(found) }
        primaries.append(address)
        return Int16(primaries.count - 1)
    }

    private mutating func assign(_ range: ClosedRange<Int>, to address: RedisAddress) {
        let index = index(of: address)
        for slot in range where (0..<HashSlot.count).contains(slot) { owners[slot] = index }
    }

    /// Parses `CLUSTER SHARDS`: for each shard its slot ranges and nodes; the shard's primary is the
    /// node whose role is `master` and health `online` (a shard may still list its failed old
    /// primary beside the new one). `tls` picks the nodes' `tls-port`. Nil when the reply is not one.
    public init?(shards reply: RESPValue, tls: Bool = false) {
        guard let shards = reply.array else { return nil }
        for shard in shards {
            guard let fields = Self.map(shard), let slots = fields["slots"]?.array, let nodes = fields["nodes"]?.array,
                slots.count % 2 == 0
            else { return nil }
            var primary: RedisAddress?
            for node in nodes {
                guard let node = Self.map(node) else { return nil }
                guard node["role"]?.string == "master", node["health"]?.string == "online" else { continue }
                let port = (tls ? node["tls-port"] : node["port"])?.int ?? 0
                var host = node["endpoint"]?.string ?? ""
                if host.isEmpty || host == "?" { host = node["ip"]?.string ?? "" }
                guard !host.isEmpty, (1...65535).contains(port) else { continue }
                primary = RedisAddress(host: host, port: Int(port))
            }
            guard let primary else { continue }  // no primary online: its slots stay unknown
            for pair in stride(from: 0, to: slots.count, by: 2) {
                guard let start = slots[pair].int, let end = slots[pair + 1].int, start <= end else { return nil }
                assign(Int(start)...Int(end), to: primary)
            }
        }
    }

    /// Parses `CLUSTER SLOTS`: `[start, end, [host, port, id], replicas…]` per range, primary first.
    public init?(slots reply: RESPValue) {
        guard let ranges = reply.array else { return nil }
        for range in ranges {
            guard let parts = range.array, parts.count >= 3, let start = parts[0].int, let end = parts[1].int, start <= end,
                let node = parts[2].array, node.count >= 2, let host = node[0].string, let port = node[1].int,
                !host.isEmpty, (1...65535).contains(port)
            else { return nil }
            assign(Int(start)...Int(end), to: RedisAddress(host: host, port: Int(port)))
        }
    }

    /// A RESP2 flat map (`[key, value, key, value, …]`) as a dictionary.
    private static func map(_ value: RESPValue) -> [String: RESPValue]? {
        guard let items = value.array, items.count % 2 == 0 else { return nil }
        var result: [String: RESPValue] = [:]
        for pair in stride(from: 0, to: items.count, by: 2) {
            guard let key = items[pair].string else { return nil }
            result[key] = items[pair + 1]
        }
        return result
    }
}

/// A `MOVED` or `ASK` reply: the slot and where it is served now.
public struct ClusterRedirect: Sendable, Equatable {
    /// True for `ASK` (ask that node once, after `ASKING`); false for `MOVED` (the slot moved for good).
    public var isAsk: Bool
    /// The slot.
    public var slot: HashSlot
    /// The node that serves it.
    public var address: RedisAddress

    /// Parses `MOVED 3999 127.0.0.1:6381` or `ASK 3999 127.0.0.1:6381` (an empty host, as Redis
    /// sends when it does not know its own, is `host`'s: the node that answered).
    public init?(_ error: RedisError, host: String) {
        guard error.kind == .server else { return nil }
        let words = error.message.split(separator: " ")
        guard words.count == 3, words[0] == "MOVED" || words[0] == "ASK", let number = Int(words[1]), let slot = HashSlot(number),
            let colon = words[2].lastIndex(of: ":"), let port = Int(words[2][words[2].index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        var target = String(words[2][..<colon])
        if target.hasPrefix("["), target.hasSuffix("]") { target = String(target.dropFirst().dropLast()) }
        if target.isEmpty || target == "?" { target = host }
        self.isAsk = words[0] == "ASK"
        self.slot = slot
        self.address = RedisAddress(host: target, port: port)
    }
}
