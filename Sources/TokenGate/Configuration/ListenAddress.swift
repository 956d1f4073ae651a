/// Where a listener binds (`TOKENGATE_LISTEN`, `TOKENGATE_ADMIN_LISTEN`).
public struct ListenAddress: Sendable, Equatable {
    /// Host to bind.
    public var host: String
    /// Port to bind (0 picks a free one).
    public var port: Int

    /// Parses `host:port` (IPv6 hosts in brackets; an empty host means every address).
    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        var host = text[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        self.host = host.isEmpty ? "0.0.0.0" : String(host)
        self.port = port
    }
}
