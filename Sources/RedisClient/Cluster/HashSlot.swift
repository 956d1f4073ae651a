/// A Redis Cluster hash slot (0–16383): CRC16 (XMODEM) of the key, or of its hash tag, modulo 16384.
///
/// The hash tag is the text between the first `{` and the next `}`, when that is not empty; so
/// TokenGate's `tg:{alice}:s:…`, `tg:{alice}:t:…` and `tg:{alice}:sessions` share a slot.
public struct HashSlot: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The slot number.
    public let rawValue: UInt16

    /// The number of slots.
    public static let count = 16384

    /// A slot by number; nil outside 0–16383.
    public init?(_ rawValue: Int) {
        guard (0..<Self.count).contains(rawValue) else { return nil }
        self.rawValue = UInt16(rawValue)
    }

    /// The slot of `key`.
    public init(key: String) {
        var key = key
        self = key.withUTF8 { HashSlot(bytes: $0) }
    }

    /// The slot of a key's bytes.
    public init(bytes: UnsafeBufferPointer<UInt8>) {
        var hashed = bytes[...]
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
            let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            hashed = bytes[(open + 1)..<close]
        }
        self.rawValue = Self.crc16(hashed) & 0x3FFF
    }

    /// CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), as Redis Cluster computes it.
    static func crc16(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int((crc >> 8) ^ UInt16(byte))]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }

    public static func < (lhs: HashSlot, rhs: HashSlot) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { String(rawValue) }
}
