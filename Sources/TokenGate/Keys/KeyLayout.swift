import Crypto

/// Every Redis key TokenGate writes, in one place. The README's "Redis key layout" table says
/// what each holds and for how long (the scripts in `Scripts.swift` write them).
///
/// All keys of one user share the hash tag `{user}`, so Redis Cluster keeps them in one slot
/// and a Lua script can change them atomically.
///
/// The user id stands in the tag as `UserID.keyTag` writes it: ids of `[A-Za-z0-9._@+-]` (every
/// htpasswd name) verbatim, any other byte as `%XX`, so an id can never close the hash tag early,
/// inject separators or share a key with another id.
public struct KeyLayout: Sendable, Equatable {
    /// The prefix of every key (`TOKENGATE_KEY_PREFIX`).
    public let prefix: String

    /// Creates the layout for a prefix.
    public init(prefix: String) { self.prefix = prefix }

    /// `tg:{alice}:s:<sid>` — a session's hash.
    public func session(user: String, sid: String) -> String { join(user, "}:s:", sid) }
    /// `tg:{alice}:s:` — what a session id is appended to.
    public func sessionPrefix(user: String) -> String { join(user, "}:s:") }
    /// `tg:{alice}:t:<jti>` — a live token.
    public func token(user: String, jti: String) -> String { join(user, "}:t:", jti) }
    /// `tg:{alice}:t:` — what a token id is appended to.
    public func tokenPrefix(user: String) -> String { join(user, "}:t:") }
    /// `tg:{alice}:sessions` — the user's session index.
    public func sessionIndex(user: String) -> String { join(user, "}:sessions") }
    /// `tg:{alice}:ended:<id>` — the index of sessions a large logout-all ended, while their keys
    /// are deleted in batches.
    public func endedSessions(user: String, id: String) -> String { join(user, "}:ended:", id) }
    /// `tg:rl:u:<hash>` — failed logins for a username (hashed: attackers choose these names).
    public func failedLogins(user: String) -> String {
        "\(prefix)rl:u:" + Hex.encode(SHA256.hash(data: Array(user.utf8)).prefix(10))
    }
    /// `tg:rl:ua:<hash>` — failed logins for a username from one client address (hashed together).
    public func failedLogins(user: String, address: String) -> String {
        "\(prefix)rl:ua:" + Hex.encode(SHA256.hash(data: Array("\(user)\n\(address)".utf8)).prefix(10))
    }

    /// `<prefix>{<user><middle><id>`, its bytes copied into one allocation: every verify builds
    /// three keys and a prefix, and string interpolation, then appending, cost 3 % and 6 % of its
    /// instructions (bench/profile).
    private func join(_ user: String, _ middle: StaticString, _ id: String = "") -> String {
        var prefix = prefix
        var user = UserID.keyTag(user)
        var id = id
        let count = prefix.utf8.count + 1 + user.utf8.count + middle.utf8CodeUnitCount + id.utf8.count
        return String(unsafeUninitializedCapacity: count) { key in
            var written = 0
            func put(_ bytes: UnsafeBufferPointer<UInt8>) {
                _ = UnsafeMutableBufferPointer(rebasing: key[written...]).initialize(fromContentsOf: bytes)
                written += bytes.count
            }
            prefix.withUTF8(put)
            key[written] = UInt8(ascii: "{")
            written += 1
            user.withUTF8(put)
            middle.withUTF8Buffer(put)
            id.withUTF8(put)
            return written
        }
    }

    /// `tg:rl:ip:<address>` — failed logins from one client address.
    public func failedLogins(address: String) -> String { "\(prefix)rl:ip:\(address)" }
    /// `tg:rl:sk:<address>` — wrong service keys from one client address.
    public func failedServiceKeys(address: String) -> String { "\(prefix)rl:sk:\(address)" }
    /// The user of a session index's key (`sessionIndex(user:)` reversed); nil for other keys.
    public func user(inIndexKey key: String) -> String? {
        let (head, tail) = ("\(prefix){", "}:sessions")
        guard key.utf8.count > head.utf8.count + tail.utf8.count, key.utf8.starts(with: head.utf8),
            key.utf8.reversed().starts(with: tail.utf8.reversed())
        else { return nil }
        return UserID.fromKeyTag(key.utf8.dropFirst(head.utf8.count).dropLast(tail.utf8.count))
    }

    /// The `SCAN` pattern matching every user's session index.
    public var sessionIndexPattern: String { "\(prefix){*}:sessions" }
    /// The `SCAN` pattern matching every key of the service.
    public var allKeysPattern: String { "\(prefix)*" }
}
