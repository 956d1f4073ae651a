import Synchronization

/// At most one of each warning a second. A topology lookup runs up to ten times a second while
/// commands fail (each failure triggers one, 100 ms apart), and its trouble should reach the log as
/// often as before: once a second.
final class WarningThrottle: Sendable {
    private let interval: Duration
    private let last = Mutex<[String: ContinuousClock.Instant]>([:])

    init(interval: Duration = .seconds(1)) {
        self.interval = interval
    }

    /// Whether `message` may be logged now (then it is not again for `interval`).
    func allows(_ message: String) -> Bool {
        let now = ContinuousClock.now
        return last.withLock { last in
            if let previous = last[message], now - previous < interval { return false }
            last[message] = now
            return true
        }
    }
}
