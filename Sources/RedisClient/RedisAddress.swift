/// A server's host and port.
public struct RedisAddress: Sendable, Hashable, CustomStringConvertible {
    /// A DNS name or an IP address (IPv6 without brackets).
    public var host: String
    /// The TCP port.
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, or `[host]:port` for IPv6.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
