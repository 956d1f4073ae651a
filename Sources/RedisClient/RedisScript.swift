import Crypto

/// A Lua script with its SHA1, for `EVALSHA`.
public struct RedisScript: Sendable {
    /// A short name for logs.
    public let name: String
    /// The Lua source.
    public let source: String
    /// Lower-case hex SHA1 of `source`, as Redis names cached scripts.
    public let sha1: String

    /// Creates a script and computes its SHA1.
    public init(name: String, source: String) {
        self.name = name
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
