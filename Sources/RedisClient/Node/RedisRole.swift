/// What a server says it is (`ROLE`): a primary with its replicas, a replica of some primary, or a
/// sentinel.
public enum RedisRole: Sendable, Equatable {
    /// A primary, with the replicas connected to it.
    case primary(replicas: [RedisAddress])
    /// A replica of `primary`; `linkUp` once it is in sync (`connected`), not while it connects or
    /// syncs (a failover in progress).
    case replica(primary: RedisAddress, linkUp: Bool)
    /// A sentinel.
    case sentinel

    /// Parses a `ROLE` reply; nil when it is not one.
    public init?(_ reply: RESPValue) {
        guard let parts = reply.array, let name = parts.first?.string else { return nil }
        switch name {
        case "master":
            let replicas = (parts.count > 2 ? parts[2].array ?? [] : []).compactMap { entry -> RedisAddress? in
                guard let fields = entry.array, fields.count >= 2, let host = fields[0].string,
                    let port = fields[1].int.map(Int.init)
                else { return nil }
                return RedisAddress(host: host, port: port)
            }
            self = .primary(replicas: replicas)
        case "slave", "replica":
            guard parts.count >= 4, let host = parts[1].string, let port = parts[2].int.map(Int.init), let state = parts[3].string else {
                return nil
            }
            self = .replica(primary: RedisAddress(host: host, port: port), linkUp: state == "connected")
        case "sentinel":
            self = .sentinel
        default:
            return nil
        }
    }

    /// True for a primary.
    public var isPrimary: Bool {
        if case .primary = self { return true }
        return false
    }

    /// `master`, `slave` or `sentinel`, as Redis names them.
    public var name: String {
        switch self {
        case .primary: "master"
        case .replica: "slave"
        case .sentinel: "sentinel"
        }
    }
}
