/// Comparison of secrets without an early exit, so its time does not tell how much matched.
public enum ConstantTime {
    /// Whether `a` and `b` hold the same bytes (the length is not secret).
    public static func equal(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
