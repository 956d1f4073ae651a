/// When to look a Redis topology up (the primary Sentinel names, or Cluster's slot map): one
/// lookup at a time, starts at least `spacing` apart, one every `inDoubtInterval` while in doubt
/// and every `interval` otherwise, and one as soon as the spacing allows when something triggers
/// it (a lost connection, a redirect, `+switch-master`, a command that found no primary).
///
/// A value type that decides and returns actions; its owner (`TopologyRefresher`) starts the
/// lookups and sleeps until the instants it names. Time is passed in, so tests drive it with a
/// manual clock.
struct TopologyRefresh<C: Clock> where C.Duration == Duration {
    enum Action: Equatable {
        /// Start a lookup now (it is under way from here on: report its end with `finished`).
        case lookUp
        /// Nothing to start before this instant (which may be now): `tick` then.
        case wait(until: C.Instant)
        /// A lookup is under way (its end decides what is next), or the client is shut down.
        case none
    }

    /// The least time between the starts of two lookups.
    static var spacing: Duration { .milliseconds(100) }
    /// The time from a lookup that found the topology to the next one.
    static var interval: Duration { .seconds(5) }
    /// The time from a lookup that did not (or from trouble) to the next one.
    static var inDoubtInterval: Duration { .seconds(1) }

    /// Trouble was seen, or the last lookup found nothing, since a lookup last found the topology.
    private(set) var inDoubt = true
    private(set) var isLookingUp = false
    private(set) var isShutDown = false
    /// When the last lookup started.
    private var lastStart: C.Instant?
    /// When the next lookup is due; nil: now (no lookup yet).
    private var due: C.Instant?
    /// A trigger came while a lookup ran (which may have read the topology before the change).
    private var again = false

    /// Something says the topology may have changed; `doubt`: what is known may be wrong (then the
    /// lookups come every `inDoubtInterval` until one finds it). A redirect is no doubt: the node
    /// that sent it knows better, and the map is patched already.
    mutating func trigger(at now: C.Instant, doubt: Bool = true) -> Action {
        if doubt { inDoubt = true }
        if isShutDown { return .none }
        if isLookingUp {
            again = true
            return .none
        }
        let earliest = earliestStart(at: now)
        due = min(due ?? earliest, earliest)
        return tick(at: now)
    }

    /// The owner's timer fired (or it asks what to do): starts the lookup that is due, or names
    /// the instant to come back.
    mutating func tick(at now: C.Instant) -> Action {
        if isShutDown || isLookingUp { return .none }
        let start = due ?? now
        guard start <= now else { return .wait(until: start) }
        isLookingUp = true
        lastStart = now
        due = nil
        return .lookUp
    }

    /// The lookup ended; `found`: it found the topology and it answered (the doubt is over).
    /// Returns when the next one is due (never `.lookUp`: the owner ticks at that instant, which
    /// is now when a trigger came meanwhile and the spacing allows).
    mutating func finished(at now: C.Instant, found: Bool) -> Action {
        guard isLookingUp else { return .none }
        isLookingUp = false
        inDoubt = !found
        if isShutDown { return .none }
        if again {
            again = false
            due = earliestStart(at: now)
        } else {
            due = now.advanced(by: inDoubt ? Self.inDoubtInterval : Self.interval)
        }
        return .wait(until: due ?? now)
    }

    /// No lookup starts from now on.
    mutating func shutdown() {
        isShutDown = true
    }

    private func earliestStart(at now: C.Instant) -> C.Instant {
        guard let lastStart else { return now }
        return max(now, lastStart.advanced(by: Self.spacing))
    }
}
