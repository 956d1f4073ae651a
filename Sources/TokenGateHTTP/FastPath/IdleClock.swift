/// A connection's idle clock: it closes a connection that sends nothing, or trickles a request,
/// for longer than the client timeout (the slowloris defence that replaces Hummingbird's timer).
///
/// The clock runs from the moment the connection went idle or began its current request, and is
/// stopped while an answer of the fast path is being made (that wait is bounded by the Redis
/// timeout, not the client's pace). While a request handed to Hummingbird is pending the allowance
/// is twice the timeout, so that a connection whose answers stop (after `Connection: close`, say)
/// is still closed.
///
/// A value type: starting and stopping the clock reads the time and nothing else; one check per
/// connection is scheduled at a time, and it says when the next one is due. Generic over the
/// clock, so tests move time by hand.
struct IdleClock<Clock: _Concurrency.Clock> where Clock.Duration == Duration {
    /// What the scheduled check found.
    enum Check: Equatable {
        /// The connection has been idle too long.
        case close
        /// Check again after this long.
        case checkAgain(after: Duration)
    }

    let clock: Clock
    let timeout: Duration
    /// When the clock was last (re)started.
    private(set) var since: Clock.Instant
    /// False while stopped.
    private(set) var isRunning = true

    /// A clock that starts running now.
    init(clock: Clock, timeout: Duration) {
        self.clock = clock
        self.timeout = timeout
        self.since = clock.now
    }

    /// (Re)starts the clock: the connection went idle, or began a request.
    mutating func start() {
        since = clock.now
        isRunning = true
    }

    /// Stops the clock while an answer is being made.
    mutating func stop() { isRunning = false }

    /// The scheduled check. `patient`: a request handed to the application is pending.
    func check(patient: Bool) -> Check {
        let now = clock.now
        guard isRunning else { return .checkAgain(after: timeout) }
        let expiry = since.advanced(by: patient ? timeout * 2 : timeout)
        if expiry <= now { return .close }
        return .checkAgain(after: now.duration(to: expiry))
    }
}
