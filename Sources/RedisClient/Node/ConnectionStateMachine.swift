import NIOCore

/// The life of one pipelined connection of a node client: made lazily, re-made after any error,
/// and backed off (100 ms doubling to 2 s) while the node cannot be reached.
///
/// A value type that decides and returns actions; the node client performs them (connects,
/// closes, fails commands). Time is passed in, so tests drive it with a manual clock.
struct ConnectionStateMachine<Connection: AnyObject, Pending> {
    enum State {
        /// No connection; the next connect may start at `retryAt` (after `failures` failed ones).
        case idle(failures: Int, retryAt: NIODeadline)
        /// A connect is under way; callers wait for `Pending`.
        case connecting(Pending, failures: Int)
        case connected(Connection)
        case shutdown
    }

    /// What a command that needs the connection must do.
    enum Action {
        case use(Connection)
        case wait(Pending)
        /// Connect now (`pending` is what later callers wait for).
        case connect
        /// Backing off (or shut down): fail at once.
        case fail(RedisError)
    }

    static var firstDelay: TimeAmount { .milliseconds(100) }
    static var maximumDelay: TimeAmount { .seconds(2) }

    private(set) var state: State = .idle(failures: 0, retryAt: .uptimeNanoseconds(0))

    /// The open connection, if any (the hot path: nothing else is looked at).
    var connection: Connection? {
        if case .connected(let connection) = state { return connection }
        return nil
    }

    /// True while failed connects keep this connection from being tried before `now`'s retry time.
    func isBackingOff(at now: NIODeadline) -> Bool {
        if case .idle(let failures, let retryAt) = state { return failures > 0 && now < retryAt }
        return false
    }

    /// A command needs the connection at `now`; `pending` is made (lazily) when a connect starts.
    mutating func needConnection(at now: NIODeadline, pending: () -> Pending) -> Action {
        switch state {
        case .connected(let connection):
            return .use(connection)
        case .connecting(let waiting, _):
            return .wait(waiting)
        case .idle(let failures, let retryAt):
            if now < retryAt { return .fail(RedisError(.unavailable, "Redis unreachable; retrying shortly")) }
            state = .connecting(pending(), failures: failures)
            return .connect
        case .shutdown:
            return .fail(RedisError(.shutdown, "client shut down"))
        }
    }

    /// The connect succeeded. False: the client was shut down meanwhile; close the connection.
    mutating func connected(_ connection: Connection) -> Bool {
        guard case .connecting = state else { return false }
        state = .connected(connection)
        return true
    }

    /// The connect failed at `now`; returns the delay before the next try (nil: shut down meanwhile).
    mutating func connectFailed(at now: NIODeadline) -> TimeAmount? {
        guard case .connecting(_, let failures) = state else { return nil }
        let delay = Self.delay(afterFailures: failures)
        state = .idle(failures: failures + 1, retryAt: now + delay)
        return delay
    }

    /// `connection` closed (an error, a timeout, the peer): the next command reconnects at once.
    /// True when it was the open connection (false: an old one, or shut down).
    mutating func closed(_ connection: Connection, at now: NIODeadline) -> Bool {
        guard case .connected(let current) = state, current === connection else { return false }
        state = .idle(failures: 0, retryAt: now)
        return true
    }

    /// Shut down: returns the connection to close, if one is open.
    mutating func shutdown() -> Connection? {
        defer { state = .shutdown }
        return connection
    }

    /// 100 ms, 200 ms, 400 ms, … at most 2 s.
    static func delay(afterFailures failures: Int) -> TimeAmount {
        .nanoseconds(min(maximumDelay.nanoseconds, firstDelay.nanoseconds << min(failures, 5)))
    }
}
