import NIOCore
import NIOHTTP1
import TokenGate

/// The decisions of `FastPathHandler`, one connection's worth: which requests the fast path
/// answers, the order answers leave in (HTTP/1 pipelining), when reading pauses, and the idle
/// clock. A value type that returns actions; the handler performs them (writes, reads, closes,
/// passes parts on to Hummingbird). Tests drive it without a channel, with a manual clock.
///
/// The order rules:
/// - a request of ours waits until every answer before it has been written: a request that
///   reaches Hummingbird while one of ours is pending is held back, and ours are answered only
///   while Hummingbird owes no answer (`forwarded == 0`);
/// - input that arrives while our answer is pending is held, and replayed once it is written;
/// - a refused request head (`refusal(of:)`) is answered after the answers before it, then the
///   connection closes; input after it is dropped.
struct FastPathStateMachine<Clock: _Concurrency.Clock> where Clock.Duration == Duration {
    /// What to do with a request part (one read, or one replayed from the held input).
    enum ReadAction {
        /// Nothing now (held, dropped, or part of a request of ours).
        case none
        /// Pass the part on to Hummingbird.
        case forward(HTTPServerRequestPart)
        /// Write `100 Continue` (the client waits for it before sending the body), then pass the
        /// request head on.
        case forwardAfterContinue(HTTPServerRequestPart)
        /// Answer a request of ours, then call `answerWritten`.
        case answer(HotRoute, HTTPRequestHead)
        /// Answer the refusal and close the connection.
        case refuse(TokenGateError)
        /// Close the connection (input the HTTP/1 decoder cannot produce).
        case close
    }

    /// What follows an answer of ours.
    enum AfterAnswer {
        /// The client asked for the connection to close, or the server is shutting down.
        case close
        /// The answer was made while replaying held input: the replay goes on.
        case resumeReplay
        /// Replay the held input (`nextHeld`), then call `replayFinished`.
        case replay
        /// Nothing was held (the common case): what is left to do.
        case done(ReplayEnd)
    }

    /// What the end of a replay leaves to do, in this order.
    struct ReplayEnd {
        /// Hummingbird was handed input: end its read cycle.
        var readComplete = false
        /// A decoder error held behind our answer, to pass on now.
        var error: (any Error)?
        /// A read held back earlier may go ahead.
        var read = false
    }

    /// What a graceful shutdown's quiesce event does.
    enum Quiesce {
        /// Nothing is pending: close now.
        case close
        /// Hummingbird owes an answer: it closes after it.
        case passOn
        /// An answer of ours is pending: the connection closes after it.
        case hold
    }

    private enum State {
        /// Between requests, or passing a request to Hummingbird.
        case idle
        /// Reading one of our requests (waiting for its end).
        case reading(HotRoute, HTTPRequestHead)
        /// Our answer is on its way; later input waits.
        case answering
        /// A refused request head waits for the answers before it. Later input is dropped.
        case refusing(TokenGateError)
    }

    /// The most a request line and its header fields may take (Node's default). Nothing TokenGate
    /// reads is bigger than a 4 KiB token plus cookies.
    static var maxHeaderBytes: Int { 16 * 1024 }

    /// Whether the fast path answers its routes (`HotRoute.answeredInPipeline`).
    let answersHotRoutes: Bool
    private(set) var idleClock: IdleClock<Clock>
    private var state = State.idle
    /// Requests handed to Hummingbird whose answer has not been written yet.
    private(set) var forwarded = 0
    /// Input that arrived while an answer was pending.
    private var held = CircularBuffer<HTTPServerRequestPart>()
    /// A decoder error that arrived while an answer of ours was pending: passed on after it.
    private var heldError: (any Error)?
    /// Replaying `held` (true once anything of it was replayed); nil otherwise.
    private var replaying: Bool?
    private var readRequested = false
    private var quiesceHeld = false
    /// The request of ours being answered asked for `Connection: close` (or is HTTP/1.0 without
    /// keep-alive).
    private var closeRequested = false

    init(answersHotRoutes: Bool, clock: Clock, idleTimeout: Duration) {
        self.answersHotRoutes = answersHotRoutes
        self.idleClock = IdleClock(clock: clock, timeout: idleTimeout)
    }

    // MARK: input

    /// A request part arrived.
    mutating func read(_ part: HTTPServerRequestPart) -> ReadAction {
        switch state {
        case .answering:
            held.append(part)
            return .none
        case .refusing:
            return .none  // the connection closes after the refusal
        case .idle, .reading:
            return process(part)
        }
    }

    private mutating func process(_ part: HTTPServerRequestPart) -> ReadAction {
        switch (state, part) {
        case (.idle, .head(let head)):
            if let refusal = Self.refusal(of: head) {
                guard forwarded == 0 else {
                    state = .refusing(refusal)
                    return .none
                }
                state = .answering
                return .refuse(refusal)
            }
            // Ours or Hummingbird's, the request must be complete within the timeout: a trickled
            // request is cut off like a trickled head. (For Hummingbird's the clock keeps running,
            // with twice the time, until its answer.)
            idleClock.start()
            if answersHotRoutes, forwarded == 0, let route = HotRoute(target: head.uri), route.accepts(isGET: head.method == .GET) {
                state = .reading(route, head)
                return .none
            }
            // `Expect: 100-continue` is answered only when no earlier answer is pending, which it
            // would otherwise overtake.
            let expectsContinue =
                forwarded == 0 && head.version == .http1_1
                && head.headers["Expect"].contains(where: { $0.lowercased() == "100-continue" })
            forwarded += 1
            return expectsContinue ? .forwardAfterContinue(part) : .forward(part)
        case (.reading, .body):
            return .none  // a body means nothing to these routes (Envoy may send the guarded request's)
        case (.reading(let route, let head), .end):
            idleClock.stop()
            closeRequested = !head.isKeepAlive
            state = .answering
            return .answer(route, head)
        case (.idle, .body), (.idle, .end):
            return .forward(part)
        case (.reading, .head), (.answering, _):
            // A head before the last request ended cannot come from the HTTP/1 decoder.
            return .close
        case (.refusing, _):
            return .none
        }
    }

    /// Why a request head is refused before any route sees it: a header block over
    /// `maxHeaderBytes` (431), or an HTTP/1.1 request without exactly one `Host` (RFC 9112: 400;
    /// cookie mode's origin check compares against that authority).
    static func refusal(of head: HTTPRequestHead) -> TokenGateError? {
        var bytes = head.uri.utf8.count + 16
        var hosts = 0
        for field in head.headers {
            bytes += field.name.utf8.count + field.value.utf8.count + 4
            if field.name.utf8.elementsEqual("host".utf8, by: { $0 | 0x20 == $1 }) { hosts += 1 }
        }
        if bytes > maxHeaderBytes {
            return TokenGateError(.headersTooLarge, "the request's header fields are larger than \(maxHeaderBytes / 1024) KiB")
        }
        if head.version == .http1_1, hosts != 1 {
            return TokenGateError(.invalidRequest, hosts == 0 ? "an HTTP/1.1 request needs a Host header" : "more than one Host header")
        }
        return nil
    }

    /// A decoder error arrived: true to pass it on now. One behind a pending answer of ours waits
    /// for it (a bad request must not be answered, or close the connection, before ours is).
    mutating func errorCaught(_ error: any Error) -> Bool {
        switch state {
        case .answering:
            heldError = error
            return false
        case .refusing:
            return false  // the connection closes after the refusal
        case .idle, .reading:
            return true
        }
    }

    // MARK: reading

    /// The pipeline asks to read: true to read now, else the read waits for `resumeRead`.
    mutating func readRequested(isWritable: Bool) -> Bool {
        if mayRead(isWritable: isWritable) { return true }
        readRequested = true
        return false
    }

    /// True when a read held back earlier may go ahead now.
    mutating func resumeRead(isWritable: Bool) -> Bool {
        guard readRequested, mayRead(isWritable: isWritable) else { return false }
        readRequested = false
        return true
    }

    /// Reading stops once input has piled up behind a pending answer (a pipelining client), and
    /// while the peer does not take our answers (the channel is not writable: the write buffer is
    /// past its high-water mark). So a connection holds at most one read cycle of requests and a
    /// write buffer of answers, however much a client pipelines without reading. Holding back every
    /// read while an answer is pending would cost two `epoll_ctl` calls per request (NIO drops the
    /// socket's read interest when no read is pending, and adds it back on the next read).
    private func mayRead(isWritable: Bool) -> Bool {
        switch state {
        case .answering where !held.isEmpty, .refusing: false
        case .idle, .reading, .answering: isWritable
        }
    }

    // MARK: answers

    /// Hummingbird wrote the end of an answer: the refusal waiting for it, if it was the last
    /// one owed, is to be answered now (and the connection closed).
    mutating func hummingbirdAnswered() -> TokenGateError? {
        forwarded -= 1
        switch state {
        case .idle:
            idleClock.start()
            return nil
        case .refusing(let refusal) where forwarded == 0:
            state = .answering
            return refusal
        case .refusing, .reading, .answering:
            return nil
        }
    }

    /// Our answer has been written.
    mutating func answerWritten(isWritable: Bool) -> AfterAnswer {
        state = .idle
        if quiesceHeld || closeRequested { return .close }
        // An answer completed while replaying (a refused token is answered at once): the replay
        // loop, further up the stack, goes on with the next input.
        if replaying != nil { return .resumeReplay }
        if held.isEmpty { return .done(finished(readComplete: false, isWritable: isWritable)) }
        replaying = true
        return .replay
    }

    /// The next held input to act on, while replaying; nil when the replay is over (nothing held,
    /// or another answer of ours is pending).
    mutating func nextHeld() -> ReadAction? {
        if case .answering = state { return nil }
        guard let part = held.popFirst() else { return nil }
        return process(part)
    }

    /// The replay is over.
    mutating func replayFinished(isWritable: Bool) -> ReplayEnd {
        let readComplete = replaying ?? false
        replaying = nil
        return finished(readComplete: readComplete, isWritable: isWritable)
    }

    private mutating func finished(readComplete: Bool, isWritable: Bool) -> ReplayEnd {
        var end = ReplayEnd(readComplete: readComplete)
        if case .answering = state { return end }
        end.error = heldError
        heldError = nil
        if case .idle = state { idleClock.start() }
        end.read = resumeRead(isWritable: isWritable)
        return end
    }

    // MARK: shutdown and the idle clock

    /// Graceful shutdown: our pending answer is finished first; Hummingbird then closes the connection.
    mutating func quiesce() -> Quiesce {
        switch state {
        case .idle where forwarded == 0:
            return .close
        case .idle:
            return .passOn
        case .reading, .answering, .refusing:
            quiesceHeld = true
            return .hold
        }
    }

    /// The idle clock's scheduled check.
    func checkIdle() -> IdleClock<Clock>.Check {
        idleClock.check(patient: forwarded > 0)
    }
}
