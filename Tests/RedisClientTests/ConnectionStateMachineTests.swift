import NIOCore
import Testing

@testable import RedisClient

@Suite("a node client's connection: made lazily, re-made after errors, backed off")
struct ConnectionStateMachineTests {
    final class Connection {}
    typealias Machine = ConnectionStateMachine<Connection, Int>

    /// A manual clock: milliseconds since an arbitrary start.
    private func at(_ milliseconds: Int64) -> NIODeadline { .uptimeNanoseconds(1_000_000_000 + UInt64(milliseconds) * 1_000_000) }

    @Test("the first command connects; commands during the connect wait for it; then they use it")
    func connect() {
        var machine = Machine()
        guard case .connect = machine.needConnection(at: at(0), pending: { 7 }) else {
            Issue.record("no connect")
            return
        }
        guard case .wait(7) = machine.needConnection(at: at(1), pending: { 8 }) else {
            Issue.record("no wait")
            return
        }
        let connection = Connection()
        let made = machine.connected(connection)
        #expect(made)
        guard case .use(let used) = machine.needConnection(at: at(2), pending: { 9 }) else {
            Issue.record("not used")
            return
        }
        #expect(used === connection)
        #expect(machine.connection === connection)
    }

    @Test("failed connects back off 100, 200, 400 ms … at most 2 s; commands meanwhile fail at once")
    func backoff() {
        var machine = Machine()
        var now: Int64 = 0
        for expected: Int64 in [100, 200, 400, 800, 1600, 2000, 2000] {
            guard case .connect = machine.needConnection(at: at(now), pending: { 0 }) else {
                Issue.record("no connect at \(now)")
                return
            }
            let delay = machine.connectFailed(at: at(now))
            #expect(delay == .milliseconds(expected))
            #expect(machine.isBackingOff(at: at(now + expected - 1)))
            guard case .fail(let error) = machine.needConnection(at: at(now + expected - 1), pending: { 0 }) else {
                Issue.record("connected during the back-off")
                return
            }
            #expect(error.kind == .unavailable)
            now += expected
            #expect(!machine.isBackingOff(at: at(now)))
        }
    }

    @Test("a success resets the back-off; a closed connection reconnects at once, an old one changes nothing")
    func reset() {
        var machine = Machine()
        _ = machine.needConnection(at: at(0), pending: { 0 })
        _ = machine.connectFailed(at: at(0))
        _ = machine.needConnection(at: at(100), pending: { 0 })
        let connection = Connection()
        let made = machine.connected(connection)
        #expect(made)
        let other = machine.closed(Connection(), at: at(150))
        #expect(!other, "another connection's close is not ours")
        #expect(machine.connection === connection)
        let ours = machine.closed(connection, at: at(200))
        #expect(ours)
        #expect(!machine.isBackingOff(at: at(200)))
        guard case .connect = machine.needConnection(at: at(200), pending: { 0 }) else {
            Issue.record("no reconnect")
            return
        }
        let delay = machine.connectFailed(at: at(200))
        #expect(delay == .milliseconds(100), "the back-off starts again from 100 ms")
    }

    @Test("after shutdown nothing connects, a connect that finishes is refused, and the open connection is handed back to close")
    func shutdown() {
        var machine = Machine()
        _ = machine.needConnection(at: at(0), pending: { 0 })
        let connection = Connection()
        let made = machine.connected(connection)
        #expect(made)
        let open = machine.shutdown()
        #expect(open === connection)
        guard case .fail(let error) = machine.needConnection(at: at(1), pending: { 0 }) else {
            Issue.record("not failed")
            return
        }
        #expect(error.kind == .shutdown)
        let late = machine.connected(Connection())
        #expect(!late)
        let lateFailure = machine.connectFailed(at: at(2))
        #expect(lateFailure == nil)
        let afterShutdown = machine.closed(connection, at: at(3))
        #expect(!afterShutdown, "a close after shutdown is not trouble")
    }
}
