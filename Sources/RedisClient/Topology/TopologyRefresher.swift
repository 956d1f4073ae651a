import Synchronization

/// What one topology lookup found.
enum TopologyLookup: Sendable {
    /// The topology, and it answers: the doubt is over.
    case found
    /// Some of it (Cluster: slots without a primary): commands waiting for it go on, but the
    /// lookups keep the in-doubt cadence.
    case partly
    /// Nothing usable: commands waiting for it fail with the error.
    case failed(RedisError)

    var result: Result<Void, RedisError> {
        if case .failed(let error) = self { return .failure(error) }
        return .success(())
    }
}

/// Drives a `TopologyRefresh` for the Sentinel and Cluster clients, which only say how to look
/// their topology up (asking the sentinels; reading the slot map) and what triggers a lookup.
///
/// - `run` is the one loop that starts lookups, in the task of the client's `run()`: it sleeps
///   until the instant the machine names or until a trigger comes, runs the lookup that is due,
///   awaited in place (so one at a time, and none outlives it), and reports its end.
/// - `trigger` only records the trigger and wakes the loop: callable from anywhere, at once.
/// - `lookedUp` waits for the end of the lookup under way or of the next one (a command that
///   found no primary). While no loop runs (a client used without running it as a service, as
///   the command line does), the waiting caller runs that lookup itself, in its own task.
final class TopologyRefresher<C: Clock>: Sendable where C.Duration == Duration {
    typealias Machine = TopologyRefresh<C>

    private let clock: C
    private let state = Mutex(State())

    /// What wakes the loop.
    private enum Event: Sendable {
        /// A trigger, a waiting caller, or the end of a lookup the loop did not run: ask again.
        case check
        /// A timer set for this instant went off.
        case timer(C.Instant)
    }

    /// What a caller of `lookedUp` does next.
    private enum Step: Sendable {
        case lookUp
        case sleep(until: C.Instant)
        case done(Result<Void, RedisError>)
    }

    private struct State {
        var machine = Machine()
        /// Triggers the machine has not been given yet (the driver gives them): nil, none;
        /// otherwise whether one of them said doubt.
        var triggered: Bool?
        /// Callers waiting for the end of the lookup under way, or of the next one.
        var waiting: [CheckedContinuation<Step, Never>] = []
        /// Wakes `run`'s loop, while it runs.
        var wake: AsyncStream<Event>.Continuation?

        /// Gives the machine the triggers it has not seen, then asks what to do at `now`.
        mutating func step(at now: C.Instant) -> Machine.Action {
            guard let doubt = triggered else { return machine.tick(at: now) }
            triggered = nil
            return machine.trigger(at: now, doubt: doubt)
        }
    }

    init(clock: C) {
        self.clock = clock
    }

    /// Something says the topology may have changed (see `TopologyRefresh.trigger`): a lookup
    /// starts as soon as the spacing allows. Records it and wakes the loop; never waits.
    func trigger(doubt: Bool = true) {
        let wake = state.withLock { state -> AsyncStream<Event>.Continuation? in
            defer { state.triggered = (state.triggered ?? false) || doubt }
            // One wake per batch of triggers: the loop takes them all at once.
            return state.triggered == nil ? state.wake : nil
        }
        wake?.yield(.check)
    }

    /// Looks the topology up with `lookUp` whenever the machine says, until cancelled (or shut
    /// down); then shuts down: callers still waiting fail with `.shutdown`. The first lookup
    /// starts at once.
    func run(lookingUp lookUp: () async -> TopologyLookup) async {
        let (events, wake) = AsyncStream.makeStream(of: Event.self)
        let running = state.withLock { state in
            guard !state.machine.isShutDown, state.wake == nil else { return false }
            state.wake = wake
            return true
        }
        guard running else { return }
        await withDiscardingTaskGroup { group in
            var events = events.makeAsyncIterator()
            // The instant of the last timer set that has not gone off yet.
            var timer: C.Instant?
            var action = state.withLock { $0.step(at: clock.now) }
            while !Task.isCancelled {
                switch action {
                case .lookUp:
                    action = await lookUpNow(lookUp, fromLoop: true).next
                    continue
                case .wait(let instant) where instant <= clock.now:
                    action = state.withLock { $0.step(at: clock.now) }
                    continue
                case .wait(let instant):
                    // An earlier timer wakes the loop first, and the machine names this one again then.
                    if timer.map({ instant < $0 }) ?? true {
                        timer = instant
                        group.addTask { [clock] in
                            try? await clock.sleep(until: instant, tolerance: nil)
                            wake.yield(.timer(instant))
                        }
                    }
                case .none:
                    break
                }
                guard let event = await events.next() else { break }
                if case .timer(let instant) = event, instant == timer { timer = nil }
                action = state.withLock { $0.step(at: clock.now) }
            }
            group.cancelAll()
        }
        shutdown()
    }

    /// Waits for the end of the lookup under way, or of the next one (triggered now, in doubt),
    /// and returns whether it found the topology. While no loop runs, the caller runs the lookup
    /// with `lookUp` itself, unless another caller is running one (then it waits for that one).
    func lookedUp(lookingUp lookUp: () async -> TopologyLookup) async -> Result<Void, RedisError> {
        while true {
            let step = await withCheckedContinuation { (continuation: CheckedContinuation<Step, Never>) in
                let (step, wake) = state.withLock { state -> (Step?, AsyncStream<Event>.Continuation?) in
                    if state.machine.isShutDown { return (.done(.failure(Self.shutDownError)), nil) }
                    // Joins the lookup under way; else asks for the next, each time round (after a sleep,
                    // a lookup another caller ended meanwhile may have put it off by a second).
                    if !state.machine.isLookingUp { state.triggered = true }
                    if !state.machine.isLookingUp, state.wake == nil {
                        switch state.step(at: clock.now) {
                        case .lookUp: return (.lookUp, nil)
                        case .wait(let instant): return (.sleep(until: instant), nil)
                        case .none: return (.done(.failure(Self.shutDownError)), nil)
                        }
                    }
                    // The lookup under way, or the loop, resumes it.
                    state.waiting.append(continuation)
                    return (nil, state.wake)
                }
                if let step { continuation.resume(returning: step) } else { wake?.yield(.check) }
            }
            switch step {
            case .done(let result):
                return result
            case .lookUp:
                return await lookUpNow(lookUp, fromLoop: false).result
            case .sleep(let instant):
                do {
                    try await clock.sleep(until: instant, tolerance: nil)
                } catch {
                    return .failure(RedisError(.unavailable, "cancelled while waiting for a Redis topology lookup"))
                }
            }
        }
    }

    /// No lookup starts from now on; callers waiting fail with `.shutdown`, and `run` returns
    /// (after the lookup under way, if any).
    func shutdown() {
        let (waiting, wake) = state.withLock { state in
            state.machine.shutdown()
            defer {
                state.waiting = []
                state.wake = nil
            }
            return (state.waiting, state.wake)
        }
        wake?.finish()
        for continuation in waiting { continuation.resume(returning: .done(.failure(Self.shutDownError))) }
    }

    private static var shutDownError: RedisError { RedisError(.shutdown, "client shut down") }

    /// Runs the lookup the machine has started, reports its end, and hands its result to every
    /// caller waiting. Returns the machine's next action, and the result.
    private func lookUpNow(
        _ lookUp: () async -> TopologyLookup,
        fromLoop: Bool
    ) async -> (next: Machine.Action, result: Result<Void, RedisError>) {
        let found = await lookUp()
        let (next, waiting, wake) = state.withLock { state in
            let isFound = if case .found = found { true } else { false }
            defer { state.waiting = [] }
            return (state.machine.finished(at: clock.now, found: isFound), state.waiting, state.wake)
        }
        // A loop that started meanwhile has seen the lookup under way and waits for its end.
        if !fromLoop { wake?.yield(.check) }
        for continuation in waiting { continuation.resume(returning: .done(found.result)) }
        return (next, found.result)
    }
}
