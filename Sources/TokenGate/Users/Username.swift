/// Usernames: canonicalised so that two accounts can never differ only by case, and restricted to
/// characters that are safe inside a Redis hash tag and a key (`[a-z0-9._@-]`, 1–64 characters).
public enum Username {
    /// The canonical form of `raw` (lower-cased), or nil when it is not an acceptable username.
    public static func canonical(_ raw: String) -> String? {
        let lowered = raw.lowercased()
        return isCanonical(lowered) ? lowered : nil
    }

    /// True when `name` is already canonical.
    public static func isCanonical(_ name: String) -> Bool {
        let utf8 = name.utf8
        guard (1...64).contains(utf8.count) else { return false }
        func allowed(_ byte: UInt8) -> Bool {
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "@") || byte == UInt8(ascii: "-")
        }
        // Over contiguous bytes where it can (every verify checks its token's `sub`).
        return utf8.withContiguousStorageIfAvailable { $0.allSatisfy(allowed) } ?? utf8.allSatisfy(allowed)
    }
}
