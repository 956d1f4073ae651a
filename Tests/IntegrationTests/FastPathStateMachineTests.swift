import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypesHTTP1
import Testing
import TokenGate

@testable import TokenGateHTTP

/// A clock the test moves by hand.
final class ManualClock: Clock, @unchecked Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private(set) var now = Instant(offset: .zero)
    var minimumResolution: Duration { .nanoseconds(1) }
    func advance(by duration: Duration) { now = now.advanced(by: duration) }
    func sleep(until deadline: Instant, tolerance: Duration?) async throws { throw CancellationError() }
}

/// The fast path's decisions, without a channel: which requests it answers, the order answers
/// leave in, when reading pauses, and the idle clock.
@Suite("the fast path's state machine: HTTP/1 order, held input, refusals, back-pressure, idle clock")
struct FastPathStateMachineTests {
    typealias Machine = FastPathStateMachine<ManualClock>

    private let clock = ManualClock()
    private func machine(answersHotRoutes: Bool = true) -> Machine {
        Machine(answersHotRoutes: answersHotRoutes, clock: clock, idleTimeout: .seconds(10))
    }

    private func head(
        _ method: HTTPMethod = .GET,
        _ uri: String,
        version: HTTPVersion = .http1_1,
        _ fields: [(String, String)] = [("Host", "example.org")]
    ) -> HTTPServerRequestPart {
        .head(HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(fields)))
    }

    /// An action, readably.
    private func describe(_ action: Machine.ReadAction?) -> String {
        switch action {
        case nil: "nothing held"
        case .none?: "none"
        case .forward(.head(let head))?: "forward \(head.method) \(head.uri)"
        case .forward(.body)?: "forward body"
        case .forward(.end)?: "forward end"
        case .forwardAfterContinue(.head(let head))?: "100-continue, forward \(head.method) \(head.uri)"
        case .forwardAfterContinue?: "100-continue, forward a part"
        case .answer(let route, _)?: "answer \(route.path)"
        case .refuse(let error)?: "refuse \(error.status.code)"
        case .close?: "close"
        }
    }

    /// What follows an answer, readably.
    private func describe(_ after: Machine.AfterAnswer) -> String {
        switch after {
        case .close: "close"
        case .resumeReplay: "resume replay"
        case .replay: "replay"
        case .done(let end): "done" + (end.readComplete ? ", read complete" : "") + (end.error != nil ? ", error" : "") + (end.read ? ", read" : "")
        }
    }

    @Test("a hot GET is read to its end and answered; input behind it is held, replayed after the answer, in order")
    func answersInOrder() {
        var machine = machine()
        #expect(describe(machine.read(head(.GET, "/auth/verify?x=1"))) == "none")
        #expect(describe(machine.read(.end(nil))) == "answer /auth/verify")
        // Pipelined behind it: held, and reading pauses once input has piled up.
        #expect(describe(machine.read(head(.POST, "/auth/login"))) == "none")
        #expect(describe(machine.read(.end(nil))) == "none")
        #expect(machine.readRequested(isWritable: true) == false)
        #expect(describe(machine.answerWritten(isWritable: true)) == "replay")
        #expect(describe(machine.nextHeld()) == "forward POST /auth/login")
        #expect(describe(machine.nextHeld()) == "forward end")
        #expect(describe(machine.nextHeld()) == "nothing held")
        let end = machine.replayFinished(isWritable: true)
        #expect(end.readComplete && end.error == nil && end.read, "Hummingbird's read cycle ends, and the held read goes ahead")
        #expect(machine.forwarded == 1)
    }

    @Test("while Hummingbird owes an answer, a hot request goes to Hummingbird too (answers keep their order)")
    func behindHummingbird() {
        var machine = machine()
        #expect(describe(machine.read(head(.POST, "/auth/refresh"))) == "forward POST /auth/refresh")
        #expect(describe(machine.read(.end(nil))) == "forward end")
        #expect(describe(machine.read(head(.GET, "/api/me"))) == "forward GET /api/me")
        #expect(describe(machine.read(.end(nil))) == "forward end")
        #expect(machine.forwarded == 2)
        #expect(machine.hummingbirdAnswered() == nil)
        #expect(machine.hummingbirdAnswered() == nil)
        #expect(describe(machine.read(head(.GET, "/api/me"))) == "none", "nothing owed: ours again")
        #expect(describe(machine.read(.end(nil))) == "answer /api/me")
    }

    @Test("the check is any method on /auth/verify or any path below it (Envoy's ext_authz); /api/me only GET")
    func checks() {
        for (method, uri) in [(HTTPMethod.POST, "/auth/verify/echo?x=1"), (.HEAD, "/auth/verify"), (.PUT, "/auth/verify/"), (.GET, "/auth/verify?")] {
            var machine = machine()
            #expect(describe(machine.read(head(method, uri))) == "none")
            #expect(describe(machine.read(.body(ByteBuffer(string: "a body")))) == "none")
            #expect(describe(machine.read(.end(nil))) == "answer /auth/verify", "\(method) \(uri)")
        }
    }

    @Test("with rotation or cookie mode the hot routes go to the router; HEAD /api/me, other paths and absolute targets always do")
    func notOurs() {
        var off = machine(answersHotRoutes: false)
        #expect(describe(off.read(head(.GET, "/auth/verify"))) == "forward GET /auth/verify")
        var on = machine()
        #expect(describe(on.read(head(.HEAD, "/api/me"))) == "forward HEAD /api/me")
        #expect(describe(on.read(.end(nil))) == "forward end")
        #expect(on.hummingbirdAnswered() == nil)
        #expect(describe(on.read(head(.POST, "/api/me/x"))) == "forward POST /api/me/x")
        #expect(describe(on.read(.end(nil))) == "forward end")
        #expect(on.hummingbirdAnswered() == nil)
        #expect(describe(on.read(head(.GET, "/auth/verifyx"))) == "forward GET /auth/verifyx")
        #expect(describe(on.read(.end(nil))) == "forward end")
        #expect(on.hummingbirdAnswered() == nil)
        #expect(describe(on.read(head(.GET, "http://example.org/auth/verify"))) == "forward GET http://example.org/auth/verify")
    }

    @Test("a head without Host, or over 16 KiB, is refused at once, or after the answers owed before it; later input is dropped")
    func refusals() {
        var machine = machine()
        #expect(describe(machine.read(head(.GET, "/api/me", []))) == "refuse 400")
        let big = [("Host", "h"), ("X-Big", String(repeating: "a", count: 16 * 1024))]
        #expect(Machine.refusal(of: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: HTTPHeaders(big)))?.status.code == 431)
        #expect(Machine.refusal(of: HTTPRequestHead(version: .http1_0, method: .GET, uri: "/", headers: [:])) == nil, "HTTP/1.0 needs no Host")

        var owing = self.machine()
        #expect(describe(owing.read(head(.POST, "/auth/login"))) == "forward POST /auth/login")
        #expect(describe(owing.read(head(.GET, "/", [("Host", "a"), ("Host", "b")]))) == "none")
        #expect(describe(owing.read(head(.GET, "/api/me"))) == "none", "dropped")
        #expect(owing.readRequested(isWritable: true) == false, "no more reading")
        #expect(owing.hummingbirdAnswered()?.status.code == 400)
    }

    @Test("Connection: close, and HTTP/1.0 without keep-alive, close after our answer")
    func closeAfterAnswer() {
        var machine = machine()
        _ = machine.read(head(.GET, "/auth/verify", [("Host", "h"), ("Connection", "close")]))
        #expect(describe(machine.read(.end(nil))) == "answer /auth/verify")
        #expect(describe(machine.answerWritten(isWritable: true)) == "close")
        var old = self.machine()
        _ = old.read(head(.GET, "/auth/verify", version: .http1_0, []))
        _ = old.read(.end(nil))
        #expect(describe(old.answerWritten(isWritable: true)) == "close")
        var kept = self.machine()
        _ = kept.read(head(.GET, "/auth/verify", version: .http1_0, [("Connection", "keep-alive")]))
        _ = kept.read(.end(nil))
        #expect(describe(kept.answerWritten(isWritable: true)) == "done")
    }

    @Test("graceful shutdown: an idle connection closes now, Hummingbird's answer is awaited, ours is finished first")
    func quiesce() {
        var idle = machine()
        #expect(idle.quiesce() == .close)
        var owing = machine()
        _ = owing.read(head(.POST, "/auth/login"))
        #expect(owing.quiesce() == .passOn)
        var answering = machine()
        _ = answering.read(head(.GET, "/api/me"))
        _ = answering.read(.end(nil))
        #expect(answering.quiesce() == .hold)
        #expect(describe(answering.answerWritten(isWritable: true)) == "close")
    }

    @Test("a decoder error behind our pending answer is passed on after it")
    func heldError() {
        struct DecoderError: Error {}
        var machine = machine()
        let passedOn = machine.errorCaught(DecoderError())
        #expect(passedOn, "nothing pending: passed on at once")
        _ = machine.read(head(.GET, "/api/me"))
        _ = machine.read(.end(nil))
        let held = !machine.errorCaught(DecoderError())
        #expect(held)
        #expect(describe(machine.answerWritten(isWritable: true)) == "done, error", "passed on after the answer")
    }

    @Test("an answer made during the replay lets the replay go on; a pending one ends it")
    func nestedAnswers() {
        var machine = machine()
        _ = machine.read(head(.GET, "/auth/verify"))
        _ = machine.read(.end(nil))
        for part in [head(.GET, "/auth/verify"), .end(nil), head(.GET, "/api/me"), .end(nil), head(.GET, "/api/me"), .end(nil)] {
            #expect(describe(machine.read(part)) == "none")
        }
        #expect(describe(machine.answerWritten(isWritable: true)) == "replay")
        #expect(describe(machine.nextHeld()) == "none")
        #expect(describe(machine.nextHeld()) == "answer /auth/verify")
        #expect(describe(machine.answerWritten(isWritable: true)) == "resume replay", "refused at once, inside the replay")
        #expect(describe(machine.nextHeld()) == "none")
        #expect(describe(machine.nextHeld()) == "answer /api/me")
        #expect(describe(machine.nextHeld()) == "nothing held", "an answer is pending: the rest waits")
        let end = machine.replayFinished(isWritable: true)
        #expect(end.readComplete && !end.read)
        #expect(describe(machine.answerWritten(isWritable: true)) == "replay")
        #expect(describe(machine.nextHeld()) == "none")
        #expect(describe(machine.nextHeld()) == "answer /api/me")
    }

    @Test("reading pauses while the peer does not take our answers, and resumes once it does")
    func backPressure() {
        var machine = machine()
        #expect(machine.readRequested(isWritable: false) == false)
        #expect(machine.resumeRead(isWritable: false) == false)
        #expect(machine.resumeRead(isWritable: true) == true)
        #expect(machine.resumeRead(isWritable: true) == false, "one held read, resumed once")
        #expect(machine.readRequested(isWritable: true) == true)
    }

    @Test("Expect: 100-continue is answered only when no earlier answer is pending")
    func expectContinue() {
        var machine = machine()
        let upload = head(.POST, "/auth/login", [("Host", "h"), ("Expect", "100-Continue")])
        #expect(describe(machine.read(upload)) == "100-continue, forward POST /auth/login")
        #expect(describe(machine.read(upload)) == "forward POST /auth/login", "the first answer is still owed")
    }

    @Test("the idle clock: a silent or trickling connection closes after the timeout; requests restart it")
    func idleClock() {
        var machine = machine()
        #expect(machine.checkIdle() == .checkAgain(after: .seconds(10)))
        clock.advance(by: .seconds(4))
        #expect(machine.checkIdle() == .checkAgain(after: .seconds(6)))
        _ = machine.read(head(.GET, "/api/me"))  // restarts the clock; the request must end in time
        clock.advance(by: .seconds(9))
        #expect(machine.checkIdle() == .checkAgain(after: .seconds(1)))
        clock.advance(by: .seconds(1))
        #expect(machine.checkIdle() == .close, "a trickled request is cut off like a silent connection")
    }

    @Test("the idle clock stops while our answer is made, and restarts once it is written")
    func idleWhileAnswering() {
        var machine = machine()
        _ = machine.read(head(.GET, "/api/me"))
        _ = machine.read(.end(nil))
        clock.advance(by: .seconds(60))
        #expect(machine.checkIdle() == .checkAgain(after: .seconds(10)), "Redis's answer is not the client's pace")
        #expect(describe(machine.answerWritten(isWritable: true)) == "done")
        clock.advance(by: .seconds(10))
        #expect(machine.checkIdle() == .close)
    }

    @Test("while Hummingbird owes an answer the allowance is doubled; its answer restarts the clock")
    func idleBehindHummingbird() {
        var machine = machine()
        _ = machine.read(head(.POST, "/auth/login"))
        _ = machine.read(.end(nil))
        clock.advance(by: .seconds(15))
        #expect(machine.checkIdle() == .checkAgain(after: .seconds(5)))
        #expect(machine.hummingbirdAnswered() == nil)
        clock.advance(by: .seconds(9))
        #expect(machine.checkIdle() == .checkAgain(after: .seconds(1)))
        clock.advance(by: .seconds(1))
        #expect(machine.checkIdle() == .close)
    }
}

/// `FastPathHandler.Installer` finds Hummingbird's internal `HTTP1ToHTTPServerCodec` by type: if a
/// Hummingbird release renames or moves it, this fails instead of the fast path silently vanishing.
@Suite struct FastPathInstallerTests {
    @Test("in Hummingbird's HTTP/1 pipeline the fast path sits ahead of HTTP1ToHTTPServerCodec and answers NIO's HTTP/1 parts")
    func installsAheadOfTheCodec() async throws {
        let configuration = try testConfiguration(redisURL: "redis://127.0.0.1:1/0")
        let parts = await TokenGateApplication.makeParts(configuration: configuration, users: TestUsers.store, logger: Logger(label: "test"))
        let http1 = HTTP1Channel(
            responder: { _, _, _ in Issue.record("a request reached the router") },
            configuration: .init(
                additionalChannelHandlers: [
                    FastPathHandler.Installer { FastPathHandler(auth: parts.auth, metrics: parts.metrics, idleTimeout: .seconds(10)) }
                ],
                idleTimeout: nil
            )
        )
        let channel = EmbeddedChannel()
        try await channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        _ = try await http1.setup(channel: channel, logger: Logger(label: "test")).get()
        let pipeline = channel.pipeline.syncOperations
        _ = try pipeline.context(handlerType: HTTP1ToHTTPServerCodec.self)
        _ = try pipeline.context(handlerType: FastPathHandler.self)
        #expect(throws: (any Error).self, "the installer leaves") { try pipeline.context(handlerType: FastPathHandler.Installer.self) }
        // A request without Host is refused by the fast path as NIO HTTP/1 parts: it sits between
        // NIO's decoder and Hummingbird's codec.
        try channel.writeInbound(ByteBuffer(string: "GET /api/me HTTP/1.1\r\n\r\n"))
        var written = ""
        while let buffer = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let bytes) = buffer { written += String(buffer: bytes) }
        }
        #expect(written.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(written.contains("\r\nConnection: close\r\n"))
        #expect(written.contains("Host header"))
        _ = try? channel.finish()
    }
}
