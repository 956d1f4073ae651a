#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Proxies whose `X-Forwarded-For` is believed (`TOKENGATE_TRUSTED_PROXIES`): addresses or CIDR
/// ranges, IPv4 or IPv6. Behind a load balancer, TokenGate otherwise sees every client as the
/// balancer, and the per-address login limit would be shared by everyone.
public struct TrustedProxies: Sendable, Equatable {
    private struct Range: Sendable, Equatable {
        let bytes: [UInt8]
        let prefixLength: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            var bits = prefixLength
            for (a, b) in zip(address, bytes) {
                if bits <= 0 { return true }
                let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
                if a & mask != b & mask { return false }
                bits -= 8
            }
            return true
        }
    }

    private let ranges: [Range]

    /// No proxy is trusted.
    public static let none = TrustedProxies(ranges: [])

    private init(ranges: [Range]) { self.ranges = ranges }

    /// Parses `"127.0.0.1, 10.0.0.0/8, ::1"`; nil when an entry is not an address or range.
    public init?(parsing text: String) {
        var ranges: [Range] = []
        for raw in text.split(separator: ",") {
            let entry = raw.trimmingSpaces()
            let parts = entry.split(separator: "/", maxSplits: 1)
            guard let first = parts.first, let bytes = Self.parse(String(first)) else { return nil }
            var length = bytes.count * 8
            if parts.count == 2 {
                guard let given = Int(parts[1]), (0...length).contains(given) else { return nil }
                length = given
            }
            ranges.append(Range(bytes: bytes, prefixLength: length))
        }
        self.ranges = ranges
    }

    /// True when `address` (textual IPv4 or IPv6) is a trusted proxy.
    public func contains(_ address: String) -> Bool {
        guard !ranges.isEmpty, let bytes = Self.parse(address) else { return false }
        return ranges.contains { $0.contains(bytes) }
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the rightmost
    /// `X-Forwarded-For` entry that is not itself a trusted proxy.
    /// The answer is in its canonical spelling (`IPAddress.canonical`).
    public func clientAddress(peer: String, forwardedFor: [String]) -> String {
        IPAddress.canonical(chosenAddress(peer: peer, forwardedFor: forwardedFor))
    }

    private func chosenAddress(peer: String, forwardedFor: [String]) -> String {
        guard contains(peer) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingSpaces() }
        for hop in hops.reversed() {
            guard Self.parse(hop) != nil else { return peer }  // garbage: do not believe any of it
            if !contains(hop) { return hop }
        }
        return hops.first ?? peer
    }

    /// The address's bytes (4 for IPv4, 16 for IPv6), or nil.
    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}
