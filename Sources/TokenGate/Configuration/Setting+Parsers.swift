/// The ways a setting's text becomes a value, shared by the declarations in `Setting+Table.swift`.
extension Setting {
    /// Any text, as given.
    static func text(_ text: String) -> String? { text }

    /// A whole number in `range`, e.g. of `"sessions"`.
    static func wholeNumber(of unit: String, in range: ClosedRange<Int>) -> @Sendable (String) throws(Refusal) -> Int {
        { text throws(Refusal) in
            guard let number = Int(text), range.contains(number) else {
                throw Refusal("must be a whole number of \(unit) from \(range.lowerBound) to \(range.upperBound)")
            }
            return number
        }
    }

    /// A whole number of seconds in `range`, for what Redis and the tokens count in seconds.
    static func seconds(_ range: ClosedRange<Int>) -> @Sendable (String) throws(Refusal) -> Int {
        wholeNumber(of: "seconds", in: range)
    }

    /// A whole number of seconds in `range`, as a `Duration`.
    static func duration(seconds range: ClosedRange<Int>) -> @Sendable (String) throws(Refusal) -> Duration {
        let seconds = Self.seconds(range)
        return { text throws(Refusal) in .seconds(try seconds(text)) }
    }

    /// Seconds, possibly fractional (`0.5`), greater than 0 and at most `limit`; kept to the millisecond.
    static func fractionalSeconds(upTo limit: Int) -> @Sendable (String) throws(Refusal) -> Duration {
        { text throws(Refusal) in
            guard let number = Double(text), number > 0, number <= Double(limit) else {
                throw Refusal("must be seconds greater than 0 and at most \(limit), e.g. 1 or 0.5")
            }
            return .milliseconds(Int(number * 1000))
        }
    }

    /// `on` or `off`.
    static func onOrOff(_ text: String) throws(Refusal) -> Bool {
        switch text {
        case "on": true
        case "off": false
        default: throw Refusal("must be on or off")
        }
    }

    /// `host:port`.
    static func listenAddress(_ text: String) throws(Refusal) -> ListenAddress {
        guard let address = ListenAddress(text) else { throw Refusal("must be host:port, e.g. 127.0.0.1:8080") }
        return address
    }
}
