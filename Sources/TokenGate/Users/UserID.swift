/// The user ids of sessions: an htpasswd login's canonical name (`Username`), or any id an app
/// passes to the service API, kept exactly as given (README, "User ids").
///
/// An id is 1–`maxBytes` bytes of UTF-8 without control characters (C0, DEL, C1). It is not
/// normalised: ids belong to the app, and Unicode normalisation would merge ids the app keeps
/// apart (NFC turns the Kelvin sign of "\u{212A}ate" into the K of "Kate"). Ids are compared and
/// stored as bytes, never with `String`'s canonical equivalence.
///
/// Where an id must be written into something narrower it is encoded, reversibly:
/// - a Redis key's hash tag (`keyTag`): bytes of `[A-Za-z0-9._@+-]` verbatim, every other byte
///   `%XX`, so the tag never holds `{`, `}` or `:` and two ids never share a key;
/// - the `X-Auth-User` header (`headerValue`): printable ASCII verbatim, anything else as
///   RFC 8187's `UTF-8''<percent-encoded>`.
public enum UserID {
    /// The longest id, in bytes of UTF-8.
    public static let maxBytes = 255

    /// The error for an id that can never be one.
    public static let invalid = TokenGateError(
        .invalidRequest,
        "user must be 1-\(maxBytes) bytes of UTF-8 without control characters"
    )

    /// True when `id` can be a user id.
    public static func isValid(_ id: String) -> Bool {
        // Over contiguous bytes where it can (every verify checks its token's `sub`).
        id.utf8.withContiguousStorageIfAvailable(isValid) ?? isValid(Array(id.utf8))
    }

    private static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        guard (1...maxBytes).contains(bytes.count) else { return false }
        var afterC2 = false
        for byte in bytes {
            // C0 and DEL; C1 (U+0080–U+009F) is 0xC2 0x80–0x9F in UTF-8.
            if byte < 0x20 || byte == 0x7F || (afterC2 && (0x80...0x9F).contains(byte)) { return false }
            afterC2 = byte == 0xC2
        }
        return true
    }

    /// The id from a percent-encoded URL path segment (the service API's `/users/{user}/…`): nil
    /// when the encoding is broken, the bytes are not UTF-8, or the id is not valid.
    public static func fromPathSegment(_ segment: some StringProtocol) -> String? {
        guard let bytes = PercentEncoding.decode(segment.utf8), let id = String(validating: bytes, as: UTF8.self) else { return nil }
        return isValid(id) ? id : nil
    }

    // MARK: Redis keys

    /// The id as it stands inside a key's hash tag: the id itself when every byte is one of
    /// `[A-Za-z0-9._@+-]` (every htpasswd name, so their keys did not change), otherwise each
    /// other byte as `%XX` (upper-case hex). `%` is always encoded, so the mapping is injective;
    /// the tag holds no `{` or `}`, so Redis Cluster hashes exactly this tag.
    public static func keyTag(_ id: String) -> String {
        let utf8 = id.utf8
        let plain = utf8.withContiguousStorageIfAvailable { $0.allSatisfy(isKeyByte) } ?? utf8.allSatisfy(isKeyByte)
        return plain ? id : PercentEncoding.encode(utf8, keeping: isKeyByte)
    }

    /// The id of a key's hash tag (`keyTag` reversed); nil for a tag `keyTag` never writes.
    public static func fromKeyTag(_ tag: some Collection<UInt8>) -> String? {
        guard let bytes = PercentEncoding.decode(tag), let id = String(validating: bytes, as: UTF8.self),
            keyTag(id).utf8.elementsEqual(tag)
        else {
            return nil
        }
        return id
    }

    static func isKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "@"), UInt8(ascii: "+"), UInt8(ascii: "-"): true
        default: false
        }
    }

    // MARK: Headers

    /// What marks an encoded `X-Auth-User` value (RFC 8187's charset and empty language).
    public static let headerMarker = "UTF-8''"

    /// The id as the `X-Auth-User` header carries it: the id itself when it is printable ASCII
    /// (0x20–0x7E) that neither starts nor ends with a space and does not start with `UTF-8''`
    /// (in any case); otherwise `UTF-8''` and the id's bytes percent-encoded, RFC 8187's
    /// `attr-char`s verbatim. Plain ASCII ids, every htpasswd name among them, are unchanged.
    public static func headerValue(_ id: String) -> String {
        let utf8 = id.utf8
        let plain =
            utf8.allSatisfy { (0x20...0x7E).contains($0) } && utf8.first != 0x20 && utf8.last != 0x20
            && !startsWithMarker(utf8)
        return plain ? id : headerMarker + PercentEncoding.encode(utf8, keeping: isAttributeByte)
    }

    /// Whether ASCII `bytes` start with `UTF-8''` in any case.
    private static func startsWithMarker(_ bytes: String.UTF8View) -> Bool {
        func lower(_ byte: UInt8) -> UInt8 { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte }
        return bytes.count >= headerMarker.utf8.count && zip(bytes, headerMarker.utf8).allSatisfy { lower($0) == lower($1) }
    }

    /// The id of an `X-Auth-User` value (`headerValue` reversed); nil when it is not one.
    public static func fromHeaderValue(_ value: String) -> String? {
        guard value.utf8.starts(with: headerMarker.utf8) else { return isValid(value) ? value : nil }
        let encoded = value.utf8.dropFirst(headerMarker.utf8.count)
        guard let bytes = PercentEncoding.decode(encoded), let id = String(validating: bytes, as: UTF8.self), isValid(id) else {
            return nil
        }
        return id
    }

    /// RFC 8187's `attr-char`: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~".
    static func isAttributeByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "+"), UInt8(ascii: "-"): true
        case UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }
}

/// `%XX` encoding of bytes (upper-case hex), and its strict reverse.
enum PercentEncoding {
    static func encode(_ bytes: some Sequence<UInt8>, keeping keep: (UInt8) -> Bool) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            if keep(byte) {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of `text` with each `%XX` decoded; nil for a `%` without two hex digits.
    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var iterator = text.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hex), let low = iterator.next().flatMap(hex) else { return nil }
            out.append(high << 4 | low)
        }
        return out
    }
}
