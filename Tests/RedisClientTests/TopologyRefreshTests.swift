import Testing

@testable import RedisClient

@Suite("when a Sentinel or Cluster client looks its topology up, on a manual clock")
struct TopologyRefreshTests {
    typealias Machine = TopologyRefresh<ContinuousClock>
    private let start = ContinuousClock.now

    /// The manual clock: milliseconds after `start`.
    private func at(_ milliseconds: Int) -> ContinuousClock.Instant { start.advanced(by: .milliseconds(milliseconds)) }

    @Test("the first lookup starts at once; then every 5 s after one that found the topology, every second after one that did not")
    func cadence() {
        var machine = Machine()
        #expect(machine.inDoubt)
        #expect(machine.tick(at: at(0)) == .lookUp)
        #expect(machine.finished(at: at(30), found: true) == .wait(until: at(5030)))
        #expect(!machine.inDoubt)
        #expect(machine.tick(at: at(5029)) == .wait(until: at(5030)))
        #expect(machine.tick(at: at(5030)) == .lookUp)
        #expect(machine.finished(at: at(5040), found: false) == .wait(until: at(6040)))
        #expect(machine.inDoubt)
        #expect(machine.tick(at: at(6040)) == .lookUp)
        #expect(machine.finished(at: at(6050), found: false) == .wait(until: at(7050)))
    }

    @Test("one lookup at a time: triggers during one start nothing, and one more follows it, 100 ms after the last start")
    func singleFlight() {
        var machine = Machine()
        #expect(machine.tick(at: at(0)) == .lookUp)
        #expect(machine.trigger(at: at(10)) == .none)
        #expect(machine.trigger(at: at(20)) == .none)
        #expect(machine.tick(at: at(30)) == .none)
        #expect(machine.finished(at: at(40), found: true) == .wait(until: at(100)))
        #expect(machine.tick(at: at(100)) == .lookUp)
        // Without a trigger meanwhile, the next is the periodic one.
        #expect(machine.finished(at: at(300), found: true) == .wait(until: at(5300)))
    }

    @Test("a trigger during a lookup that ends after the spacing: the next is due at once, and only a tick starts it")
    func againAtOnce() {
        var machine = Machine()
        #expect(machine.tick(at: at(0)) == .lookUp)
        #expect(machine.trigger(at: at(50), doubt: false) == .none)
        #expect(machine.finished(at: at(400), found: true) == .wait(until: at(400)))
        #expect(!machine.isLookingUp, "finished never starts one itself")
        #expect(machine.tick(at: at(400)) == .lookUp)
        #expect(machine.isLookingUp)
        #expect(machine.finished(at: at(420), found: true) == .wait(until: at(5420)))
    }

    @Test("a trigger starts a lookup at once, or once 100 ms have passed since the last start; it brings the periodic one forward")
    func spacing() {
        var machine = Machine()
        #expect(machine.tick(at: at(0)) == .lookUp)
        #expect(machine.finished(at: at(20), found: true) == .wait(until: at(5020)))
        #expect(machine.trigger(at: at(50), doubt: false) == .wait(until: at(100)))
        #expect(!machine.inDoubt, "a redirect is no doubt")
        #expect(machine.trigger(at: at(60)) == .wait(until: at(100)))
        #expect(machine.inDoubt)
        #expect(machine.tick(at: at(99)) == .wait(until: at(100)))
        #expect(machine.tick(at: at(100)) == .lookUp)
        #expect(machine.finished(at: at(120), found: true) == .wait(until: at(5120)))
        #expect(machine.trigger(at: at(900)) == .lookUp, "long after the last start: at once")
    }

    @Test("a trigger before the first lookup starts it at once; the first lookup needs none")
    func first() {
        var triggered = Machine()
        #expect(triggered.trigger(at: at(0)) == .lookUp)
        var ticked = Machine()
        #expect(ticked.tick(at: at(0)) == .lookUp)
        #expect(ticked.tick(at: at(1)) == .none, "one at a time")
    }

    @Test("triggers bring the next lookup forward, never put it off")
    func forwardOnly() {
        var machine = Machine()
        #expect(machine.tick(at: at(0)) == .lookUp)
        #expect(machine.finished(at: at(10), found: false) == .wait(until: at(1010)))
        #expect(machine.trigger(at: at(500)) == .lookUp)
        #expect(machine.finished(at: at(520), found: false) == .wait(until: at(1520)))
        // Due at 1520; a trigger at 1500 may start one at 1500 (the spacing allows it), not later.
        #expect(machine.trigger(at: at(1500)) == .lookUp)
        #expect(machine.finished(at: at(1510), found: true) == .wait(until: at(6510)))
        // A storm of triggers: one lookup per 100 ms at most.
        var starts: [Int] = []
        for now in stride(from: 1520, to: 2000, by: 10) {
            if machine.trigger(at: at(now)) == .lookUp || machine.tick(at: at(now)) == .lookUp {
                starts.append(now)
                _ = machine.finished(at: at(now + 5), found: false)
            }
        }
        #expect(starts == [1600, 1700, 1800, 1900])
    }

    @Test("in doubt after a failed lookup or trouble, until a lookup finds the topology")
    func doubt() {
        var machine = Machine()
        #expect(machine.tick(at: at(0)) == .lookUp)
        #expect(machine.finished(at: at(10), found: true) == .wait(until: at(5010)))
        #expect(machine.trigger(at: at(1000)) == .lookUp)
        #expect(machine.inDoubt)
        #expect(machine.finished(at: at(1500), found: false) == .wait(until: at(2500)))
        #expect(machine.inDoubt)
        #expect(machine.tick(at: at(2500)) == .lookUp)
        #expect(machine.finished(at: at(2510), found: true) == .wait(until: at(7510)))
        #expect(!machine.inDoubt)
        // A redirect (no doubt) followed by a lookup that finds nothing: in doubt again.
        #expect(machine.trigger(at: at(3000), doubt: false) == .lookUp)
        #expect(!machine.inDoubt)
        #expect(machine.finished(at: at(3100), found: false) == .wait(until: at(4100)))
        #expect(machine.inDoubt)
    }

    @Test("shut down: nothing starts, and a lookup under way leads to no other")
    func shutdown() {
        var machine = Machine()
        #expect(machine.tick(at: at(0)) == .lookUp)
        machine.shutdown()
        #expect(machine.trigger(at: at(10)) == .none)
        #expect(machine.finished(at: at(20), found: true) == .none)
        #expect(machine.tick(at: at(10_000)) == .none)
        #expect(machine.trigger(at: at(20_000)) == .none)
        #expect(machine.isShutDown)
        #expect(!machine.isLookingUp)
        var idle = Machine()
        idle.shutdown()
        #expect(idle.tick(at: at(0)) == .none, "not even the first")
    }
}
