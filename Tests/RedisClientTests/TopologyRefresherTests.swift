import Synchronization
import Testing

@testable import RedisClient

/// The loop that drives `TopologyRefresh` for Sentinel and Cluster, with lookups the test makes
/// (no server). The cadence is the machine's (`TopologyRefreshTests`, manual clock); these check
/// the driving on the real clock, within its 100 ms spacing and 1 s in-doubt interval.
@Suite("the topology refresher: one loop starts the lookups, triggers wake it, callers wait for them")
struct TopologyRefresherTests {
    typealias Refresher = TopologyRefresher<ContinuousClock>

    /// Lookups that take `duration` and end with `outcome`; records when each started and how
    /// many ran at once.
    final class Lookups: Sendable {
        private let outcome: TopologyLookup
        private let duration: Duration
        private let record = Mutex<(starts: [ContinuousClock.Instant], running: Int, mostAtOnce: Int, ended: Int)>(([], 0, 0, 0))

        init(_ outcome: TopologyLookup, taking duration: Duration = .zero) {
            self.outcome = outcome
            self.duration = duration
        }

        var starts: [ContinuousClock.Instant] { record.withLock { $0.starts } }
        var count: Int { starts.count }
        var mostAtOnce: Int { record.withLock { $0.mostAtOnce } }
        var ended: Int { record.withLock { $0.ended } }

        func lookUp() async -> TopologyLookup {
            record.withLock { record in
                record.starts.append(.now)
                record.running += 1
                record.mostAtOnce = max(record.mostAtOnce, record.running)
            }
            if duration > .zero { try? await Task.sleep(for: duration) }
            record.withLock { record in
                record.running -= 1
                record.ended += 1
            }
            return outcome
        }
    }

    /// Polls `condition` every 5 ms for up to 3 s.
    private func eventually(_ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(3)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return condition()
    }

    private static let nothing = RedisError(.unavailable, "nothing found")

    @Test("run looks up at once; a trigger wakes it for another, 100 ms after the first start at the soonest")
    func runAndTrigger() async {
        let refresher = Refresher(clock: ContinuousClock())
        let lookups = Lookups(.found)
        let loop = Task { await refresher.run(lookingUp: lookups.lookUp) }
        #expect(await eventually { lookups.count == 1 })
        try? await Task.sleep(for: .milliseconds(150))
        #expect(lookups.count == 1, "the next periodic one is 5 s away")
        refresher.trigger(doubt: false)
        refresher.trigger()
        #expect(await eventually { lookups.count == 2 })
        try? await Task.sleep(for: .milliseconds(150))
        #expect(lookups.count == 2, "two triggers at once: one lookup")
        loop.cancel()
        await loop.value
        // Once run has returned, the refresher is shut down: nothing starts, callers fail.
        refresher.trigger()
        let after = Lookups(.found)
        guard case .failure(let error) = await refresher.lookedUp(lookingUp: after.lookUp) else {
            Issue.record("a lookup after run returned")
            return
        }
        #expect(error.kind == .shutdown)
        #expect(after.count == 0)
        #expect(lookups.count == 2)
    }

    @Test("in doubt (a lookup found nothing), run looks again a second later")
    func inDoubtCadence() async {
        let refresher = Refresher(clock: ContinuousClock())
        let lookups = Lookups(.failed(Self.nothing))
        let loop = Task { await refresher.run(lookingUp: lookups.lookUp) }
        defer { loop.cancel() }
        #expect(await eventually { lookups.count == 2 })
        let starts = lookups.starts
        #expect(starts.count == 2 && starts[1] - starts[0] >= .seconds(1) && starts[1] - starts[0] < .seconds(2))
    }

    @Test("callers that need a lookup while run runs wait for one that run's loop makes, and get what it found")
    func callersWaitForTheLoop() async {
        let refresher = Refresher(clock: ContinuousClock())
        let lookups = Lookups(.partly, taking: .milliseconds(20))
        let loop = Task { await refresher.run(lookingUp: lookups.lookUp) }
        defer { loop.cancel() }
        // Once the first has ended: callers that come while one is under way join it (next test).
        #expect(await eventually { lookups.ended == 1 })
        let inline = Lookups(.failed(Self.nothing))
        let results = await withTaskGroup(of: Result<Void, RedisError>.self) { group in
            for _ in 0..<4 { group.addTask { await refresher.lookedUp(lookingUp: inline.lookUp) } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { (try? $0.get()) != nil }, "partly found: commands go on")
        #expect(inline.count == 0, "the loop looks up, not the callers")
        #expect(lookups.count >= 2)
        #expect(lookups.mostAtOnce == 1)
    }

    @Test("callers that come while the loop's lookup is under way get what it finds, without another")
    func callersJoinTheLookupUnderWay() async {
        let refresher = Refresher(clock: ContinuousClock())
        let lookups = Lookups(.found, taking: .milliseconds(500))
        let loop = Task { await refresher.run(lookingUp: lookups.lookUp) }
        defer { loop.cancel() }
        #expect(await eventually { lookups.count == 1 })
        let inline = Lookups(.failed(Self.nothing))
        let results = await withTaskGroup(of: Result<Void, RedisError>.self) { group in
            for _ in 0..<4 { group.addTask { await refresher.lookedUp(lookingUp: inline.lookUp) } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 4 && results.allSatisfy { (try? $0.get()) != nil })
        #expect(lookups.ended == 1)
        #expect(lookups.count == 1, "the next periodic one is 5 s away")
        #expect(inline.count == 0)
    }

    @Test("without run, the first caller looks up and the others wait for that one; one later waits out the spacing")
    func callersWithoutLoop() async {
        let refresher = Refresher(clock: ContinuousClock())
        let lookups = Lookups(.failed(Self.nothing), taking: .milliseconds(300))
        let results = await withTaskGroup(of: Result<Void, RedisError>.self) { group in
            for _ in 0..<8 { group.addTask { await refresher.lookedUp(lookingUp: lookups.lookUp) } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 8)
        #expect(results.allSatisfy { if case .failure(let error) = $0 { error.message == "nothing found" } else { false } })
        #expect(lookups.count == 1)
        let quick = Lookups(.found)
        #expect((try? await refresher.lookedUp(lookingUp: quick.lookUp).get()) != nil)
        #expect(quick.count == 1)
        let second = Lookups(.found)
        let started = ContinuousClock.now
        #expect((try? await refresher.lookedUp(lookingUp: second.lookUp).get()) != nil)
        #expect(second.count == 1)
        #expect(ContinuousClock.now - started >= .milliseconds(50), "100 ms after the previous start, which was just now")
    }

    @Test("shut down: callers waiting fail at once with .shutdown, run returns after the lookup under way, nothing starts")
    func shutdown() async {
        let refresher = Refresher(clock: ContinuousClock())
        let lookups = Lookups(.found, taking: .milliseconds(500))
        let loop = Task { await refresher.run(lookingUp: lookups.lookUp) }
        #expect(await eventually { lookups.count == 1 })
        let waiting = Task { await refresher.lookedUp(lookingUp: lookups.lookUp) }
        try? await Task.sleep(for: .milliseconds(50))
        let started = ContinuousClock.now
        refresher.shutdown()
        guard case .failure(let error) = await waiting.value else {
            Issue.record("a waiting caller went on after shutdown")
            return
        }
        #expect(error.kind == .shutdown)
        #expect(ContinuousClock.now - started < .milliseconds(300), "not after the lookup under way")
        await loop.value
        refresher.trigger()
        try? await Task.sleep(for: .milliseconds(150))
        #expect(lookups.count == 1)
    }
}
