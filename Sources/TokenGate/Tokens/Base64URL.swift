/// Strict, unpadded base64url (RFC 4648 section 5) as JWTs use it.
///
/// Decoding refuses padding, characters outside the alphabet, impossible lengths and
/// non-canonical encodings (leftover bits that are not zero), so each byte string has exactly one
/// accepted spelling.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, char) in alphabet.enumerated() { table[Int(char)] = UInt8(index) }
        return table
    }()

    /// Encodes bytes without padding.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 6 {
                bits -= 6
                out.append(alphabet[Int((buffer >> UInt32(bits)) & 0x3F)])
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(6 - bits)) & 0x3F)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes strictly; nil for anything but the canonical unpadded form.
    public static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        if let decoded = text.withContiguousStorageIfAvailable({ decode(bytes: $0) }) { return decoded }
        return Array(text).withUnsafeBufferPointer { decode(bytes: $0) }
    }

    /// Four characters (three bytes) a step over contiguous bytes: a verify decodes its signature and
    /// payload, and a character at a time cost 4 % of its instructions (bench/profile).
    private static func decode(bytes text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let count = text.count
        if count % 4 == 1 { return nil }
        var valid = true
        // Every valid length decodes to exactly count * 3 / 4 bytes.
        let out = [UInt8](unsafeUninitializedCapacity: count * 3 / 4) { bytes, initialized in
            decodeTable.withUnsafeBufferPointer { table in
                // Values are 0..<64; the table's 0xFF (not in the alphabet) is the only one with
                // either high bit set, so OR-ing every value finds a stranger at the end.
                var seen: UInt8 = 0
                var index = 0
                var written = 0
                while index + 4 <= count {
                    let a = table[Int(text[index])]
                    let b = table[Int(text[index + 1])]
                    let c = table[Int(text[index + 2])]
                    let d = table[Int(text[index + 3])]
                    seen |= a | b | c | d
                    let word = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                    bytes[written] = UInt8(truncatingIfNeeded: word >> 16)
                    bytes[written + 1] = UInt8(truncatingIfNeeded: word >> 8)
                    bytes[written + 2] = UInt8(truncatingIfNeeded: word)
                    index += 4
                    written += 3
                }
                // A tail of 2 characters is one byte and 4 leftover bits, of 3 two bytes and 2 bits;
                // the leftover bits must be zero, or two spellings would decode to the same bytes.
                var leftover: UInt8 = 0
                switch count - index {
                case 2:
                    let a = table[Int(text[index])]
                    let b = table[Int(text[index + 1])]
                    seen |= a | b
                    bytes[written] = a << 2 | b >> 4
                    written += 1
                    leftover = b & 0x0F
                case 3:
                    let a = table[Int(text[index])]
                    let b = table[Int(text[index + 1])]
                    let c = table[Int(text[index + 2])]
                    seen |= a | b | c
                    bytes[written] = a << 2 | b >> 4
                    bytes[written + 1] = b << 4 | c >> 2
                    written += 2
                    leftover = c & 0x03
                default:
                    break
                }
                valid = seen & 0xC0 == 0 && leftover == 0
                initialized = written
            }
        }
        return valid ? out : nil
    }

    /// True when every byte is in the base64url alphabet.
    public static func isAlphabet(_ text: some Sequence<UInt8>) -> Bool {
        // Over contiguous bytes where it can (a verify checks two identifiers).
        text.withContiguousStorageIfAvailable { bytes in bytes.allSatisfy { decodeTable[Int($0)] != 0xFF } }
            ?? text.allSatisfy { decodeTable[Int($0)] != 0xFF }
    }
}
