import Crypto

/// The service API's keys (`TOKENGATE_ADMIN_KEYS_FILE`): named secrets that let an app's backend
/// start and end sessions for users it authenticated itself (`docs/openapi.yaml`, tag `service`).
///
/// The file holds one key a line, `NAME:sha256:<64 hex digits>`, the SHA-256 of the secret:
/// the secrets are 256 random bits, so a fast hash is enough (nothing to brute-force), and the
/// file can be read by whoever deploys it without handing out a key. `#` lines and blank lines
/// are ignored. Several keys may be live at once, which is how a key is rotated.
public struct ServiceKeys: Sendable {
    /// One key: its name (for log lines) and the digest of its secret.
    struct Entry: Sendable {
        let name: String
        let digest: [UInt8]
    }

    private let entries: [Entry]

    /// The key names, in file order.
    public var names: [String] { entries.map(\.name) }

    /// What every secret starts with, so a leaked one is easy to recognise (and to scan for).
    public static let secretPrefix = "tgsk_"

    /// Parses the keys file's text. Throws one message per bad line.
    public init(parsing text: String) throws(ConfigurationError) {
        var entries: [Entry] = []
        var problems: [String] = []
        for (number, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = rawLine.trimmingSpaces()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 3, parts[1] == "sha256", let digest = Self.hexBytes(parts[2]), digest.count == 32 else {
                problems.append("service keys file line \(number + 1): expected NAME:sha256:<64 hex digits> (made by `tokengate admin-key generate`)")
                continue
            }
            let name = String(parts[0])
            guard Self.isValidName(name) else {
                problems.append("service keys file line \(number + 1): the name must be 1-64 of A-Z a-z 0-9 . _ -")
                continue
            }
            guard !entries.contains(where: { $0.name == name }) else {
                problems.append("service keys file line \(number + 1): key \(name) appears twice")
                continue
            }
            entries.append(Entry(name: name, digest: digest))
        }
        if problems.isEmpty, entries.isEmpty { problems.append("service keys file: no key in it (add one with `tokengate admin-key generate`)") }
        if !problems.isEmpty { throw ConfigurationError(problems) }
        self.entries = entries
    }

    /// The name of the key whose secret is `secret`, or nil. Every entry is compared, in constant
    /// time, so the answer's timing tells nothing about which key (or how much of one) matched.
    public func name(of secret: some Collection<UInt8>) -> String? {
        let digest = Array(SHA256.hash(data: Array(secret)))
        var found: String? = nil
        for entry in entries where ConstantTime.equal(entry.digest, digest) { found = entry.name }
        return found
    }

    /// A new secret and the keys-file line that admits it.
    public static func generate(name: String) -> (secret: String, line: String) {
        var generator = SystemRandomNumberGenerator()
        let secret = secretPrefix + Base64URL.encode((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        return (secret, line(name: name, secret: secret))
    }

    /// The keys-file line for `secret` under `name`.
    public static func line(name: String, secret: String) -> String {
        "\(name):sha256:" + Hex.encode(SHA256.hash(data: Array(secret.utf8)))
    }

    /// 1-64 of `A-Z a-z 0-9 . _ -`: safe in a log line and in the file's format.
    public static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }
    }

    private static func hexBytes(_ text: Substring) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }
}
