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
        let count = text.count
        if count % 4 == 1 { return nil }
        var valid = true
        // Every valid length decodes to exactly count * 3 / 4 bytes.
        let out = [UInt8](unsafeUninitializedCapacity: count * 3 / 4) { bytes, initialized in
            decodeTable.withUnsafeBufferPointer { table in
                var buffer: UInt32 = 0
                var bits = 0
                var written = 0
                for char in text {
                    let value = table[Int(char)]
                    if value == 0xFF {
                        valid = false
                        return
                    }
                    buffer = (buffer << 6) | UInt32(value)
                    bits += 6
                    if bits >= 8 {
                        bits -= 8
                        bytes[written] = UInt8(truncatingIfNeeded: buffer >> UInt32(bits))
                        written += 1
                    }
                }
                // Leftover bits must be zero, or two spellings would decode to the same bytes.
                if bits > 0 && buffer & ((1 << UInt32(bits)) - 1) != 0 { valid = false }
                initialized = written
            }
        }
        return valid ? out : nil
    }

    /// True when every byte is in the base64url alphabet.
    public static func isAlphabet(_ text: some Sequence<UInt8>) -> Bool {
        text.allSatisfy { decodeTable[Int($0)] != 0xFF }
    }
}
