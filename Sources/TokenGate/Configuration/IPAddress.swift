#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Client addresses as TokenGate records and counts them.
public enum IPAddress {
    /// The one spelling of an address (`2001:db8::1` for `2001:DB8:0::0:1`; an IPv4-mapped IPv6
    /// address as its IPv4 form), or the text unchanged when it is not an address.
    public static func canonical(_ text: String) -> String {
        guard let bytes = TrustedProxies.parse(text) else { return text }
        return format(unmapped(bytes))
    }

    /// What the per-address limits count: an IPv4 address, or the IPv6 network of `ipv6Prefix`
    /// bits it lies in (`2001:db8:1:2::/64`), since one IPv6 client commonly holds a whole /64 and
    /// could otherwise choose a new address for every guess.
    public static func limitKey(_ text: String, ipv6Prefix: Int) -> String {
        guard let parsed = TrustedProxies.parse(text) else { return text }
        var bytes = unmapped(parsed)
        guard bytes.count == 16, ipv6Prefix < 128 else { return format(bytes) }
        for index in 0..<16 {
            let keep = ipv6Prefix - index * 8
            if keep <= 0 {
                bytes[index] = 0
            } else if keep < 8 {
                bytes[index] &= ~(0xFF >> UInt8(keep))
            }
        }
        return format(bytes) + "/\(ipv6Prefix)"
    }

    /// `::ffff:a.b.c.d` as the IPv4 address it carries.
    private static func unmapped(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return bytes }
        return Array(bytes[12...])
    }

    private static func format(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let written = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) }
        guard written != nil else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
