import Crypto
import HummingbirdBcrypt
import NIOPosix

/// Users and their bcrypt hashes, from an htpasswd file (`htpasswd -nbB alice secret` makes a line).
///
/// Password checks run on NIO's thread pool, never on an event loop. Every failed check costs as
/// much bcrypt work as one at the file's highest cost, so a failure's time never tells a known
/// name, whatever costs the file mixes: an unknown user is checked against a dummy hash of that
/// cost; a wrong password of a user at a lower cost c is followed by checks against dummy hashes
/// of costs c, c+1, ..., highest-1 (2^c + 2^c + 2^(c+1) + ... + 2^(highest-1) = 2^highest
/// rounds). The users file is the operator's, read-only here: a login cannot rehash it.
public struct UserStore: Sendable {
    /// bcrypt compares at most 72 bytes; longer passwords are refused rather than truncated.
    public static let maxPasswordBytes = 72

    private let hashes: [String: String]
    private let credentials: [String: String]
    /// Each user's bcrypt cost.
    private let costs: [String: UInt8]
    /// The file's highest cost (10 for an empty file).
    private let highestCost: UInt8
    /// A dummy hash per cost from the file's lowest to its highest (the highest: unknown users).
    private let dummyHashes: [UInt8: String]

    /// The usernames, sorted.
    public var usernames: [String] { hashes.keys.sorted() }

    /// Creates a store from canonical usernames and bcrypt hashes.
    public init(hashes: [String: String]) {
        self.hashes = hashes.mapValues(Self.normalise)
        self.credentials = self.hashes.mapValues(Self.fingerprint)
        let costs = hashes.compactMapValues(Self.cost)
        self.costs = costs
        // The highest cost in the file: every failure must take as long as one at this cost, or
        // the time of a wrong guess tells which names exist.
        let highest = costs.values.max() ?? 10
        self.highestCost = highest
        var dummies: [UInt8: String] = [:]
        for cost in (costs.values.min() ?? highest)...highest { dummies[cost] = Bcrypt.hash(Identifier.random(), cost: cost) }
        self.dummyHashes = dummies
    }

    /// How many users have each bcrypt cost (`doctor` reports a file that mixes costs).
    public var costCounts: [UInt8: Int] { costs.values.reduce(into: [:]) { $0[$1, default: 0] += 1 } }

    /// Parses htpasswd text. Throws one message per bad line.
    public init(htpasswd text: String) throws(ConfigurationError) {
        var hashes: [String: String] = [:]
        var problems: [String] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingSuffix(while: { $0 == "\r" || $0 == " " })
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                problems.append("users file line \(number + 1): expected name:bcrypt-hash")
                continue
            }
            let rawName = String(line[..<colon])
            let hash = String(line[line.index(after: colon)...])
            guard let name = Username.canonical(rawName) else {
                problems.append("users file line \(number + 1): username must be 1-64 of a-z 0-9 . _ @ -")
                continue
            }
            guard Self.cost(hash) != nil else {
                problems.append("users file line \(number + 1): only bcrypt hashes are supported (htpasswd -B)")
                continue
            }
            if hashes.updateValue(hash, forKey: name) != nil {
                problems.append("users file line \(number + 1): user \(name) appears twice (names are case-insensitive)")
            }
        }
        if !problems.isEmpty { throw ConfigurationError(problems) }
        self.init(hashes: hashes)
    }

    /// The fingerprint of the user's password hash as the file holds it now, or nil for a name the
    /// file does not hold. A password session records it at login; a changed password (a new
    /// hash) no longer matches, which ends the session at its next refresh.
    public func credential(of username: String) -> String? { credentials[username] }

    /// 12 characters of SHA-256 of the bcrypt hash (its salt included): it tells nothing about the
    /// password, and every new hash changes it, even one of the same password.
    private static func fingerprint(_ hash: String) -> String {
        Base64URL.encode(Array(SHA256.hash(data: Array(hash.utf8))).prefix(9))
    }

    /// Checks a password; false for unknown users, wrong passwords and passwords over 72 bytes.
    /// A failure pays the bcrypt work of the file's highest cost (see the type's description).
    public func verify(username: String, password: String) async -> Bool {
        let hash = hashes[username]
        let usable = password.utf8.count <= Self.maxPasswordBytes && !password.utf8.contains(0)
        let candidate = usable ? password : "x"
        let cost = costs[username] ?? highestCost
        return
            (try? await NIOThreadPool.singleton.runIfActive {
                let matched = Bcrypt.verify(candidate, hash: hash ?? dummyHashes[highestCost] ?? "")
                if matched && hash != nil && usable { return true }
                for padding in cost..<highestCost { _ = Bcrypt.verify(candidate, hash: dummyHashes[padding] ?? "") }
                return false
            }) ?? false
    }

    /// Makes an htpasswd line for `username` (already canonical).
    public static func htpasswdLine(username: String, password: String, cost: UInt8 = 12) -> String {
        "\(username):\(Bcrypt.hash(password, cost: cost))"
    }

    /// `$2y$` (Apache's spelling) is `$2b$` to the bcrypt implementation.
    private static func normalise(_ hash: String) -> String {
        hash.hasPrefix("$2y$") ? "$2b$" + hash.dropFirst(4) : hash
    }

    /// The cost of a `$2a$`/`$2b$`/`$2y$` hash, or nil when it is not bcrypt.
    private static func cost(_ hash: String) -> UInt8? {
        let parts = hash.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].isEmpty, ["2a", "2b", "2y"].contains(parts[1]), parts[3].utf8.count == 53,
            let cost = UInt8(parts[2]), (4...31).contains(cost)
        else { return nil }
        return cost
    }
}

extension Substring {
    fileprivate func trimmingSuffix(while predicate: (Character) -> Bool) -> Substring {
        var result = self
        while let last = result.last, predicate(last) { result = result.dropLast() }
        return result
    }
}
