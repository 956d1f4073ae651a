import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import Prometheus
import TokenGate

/// The hot path, in the channel pipeline: `GET /api/me` and `GET /auth/verify` are answered here,
/// on the connection's event loop, with one signature check and one Redis round trip, without a
/// task, the router or the middleware chain. Every other request goes on to Hummingbird unchanged.
///
/// It sits right behind NIO's HTTP/1 decoder and encoder, ahead of the conversion to HTTP types
/// (`HTTP1ToHTTPServerCodec`): the hot requests are read and answered as NIO's HTTP/1 parts and never
/// converted (`HTTPAnswer` builds the heads; `FastPathHandler.Installer` puts the handler there).
///
/// The answers are the same as the routes' (`ServiceRoutes.me`, `AuthRoutes.verified`, the errors
/// of `TokenGateError.responseParts`), and they are counted in the same metrics. The fast path is
/// used only where the routes would do nothing more: rotation off and cookie mode off (a rotated
/// or cookie request goes to Hummingbird).
///
/// The handler also keeps HTTP/1 in order and connections bounded:
/// - a pipelined request waits until the answer before it has been written, so answers leave in
///   the order the requests came (requests that reach Hummingbird while one of ours is pending are
///   held back, and ours wait for Hummingbird's);
/// - a connection that sends nothing, or trickles a request head, for `idleTimeout` is closed
///   (it sees every request, so it replaces Hummingbird's idle timer).
final class FastPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    enum Route: String {
        case me = "/api/me"
        case verify = "/auth/verify"
    }

    /// What the fast path writes: one of its two 200s (from pre-built parts, `HTTPAnswer`) or a
    /// refusal (from its parts).
    private enum Answer {
        case verified(VerifiedToken)
        case me(VerifiedToken)
        case refused(TokenGateError.ResponseParts)
    }

    private enum State {
        /// Between requests, or passing a request to Hummingbird.
        case idle
        /// Reading one of our requests (waiting for its end).
        case reading(Route, HTTPRequestHead)
        /// Our answer is on its way; later input waits.
        case answering
        /// A refused request head (`refusal(of:)`) waits for the answers before it; then it is
        /// answered and the connection closed. Later input is dropped.
        case refusing(TokenGateError)
    }

    /// The most a request line and its header fields may take (Node's default). Nothing TokenGate
    /// reads is bigger than a 4 KiB token plus cookies.
    static let maxHeaderBytes = 16 * 1024

    private let auth: AuthService
    private let metrics: Metrics
    private let idleTimeout: TimeAmount
    private let enabled: Bool
    private var state = State.idle
    /// Requests handed to Hummingbird whose answer has not been written yet.
    private var forwarded = 0
    /// Input that arrived while an answer was pending.
    private var held = CircularBuffer<HTTPServerRequestPart>()
    /// Replaying `held`: an answer completed inside the replay must not start a nested replay.
    private var draining = false
    /// A decoder error that arrived while an answer of ours was pending: passed on after it.
    private var heldError: (any Error)?
    private var readRequested = false
    private var quiesceHeld = false
    /// The request asked for `Connection: close` (or is HTTP/1.0 without keep-alive).
    private var closeRequested = false
    /// The 200 counter of the route this connection asked for last (counting takes no lock).
    private var okCounter: (route: Route, counter: Counter)?
    private var idleTimer: Scheduled<Void>?
    /// When the connection went idle (or began its current request of ours); nil while busy.
    private var idleSince: NIODeadline?

    init(auth: AuthService, metrics: Metrics, idleTimeout: TimeAmount) {
        self.auth = auth
        self.metrics = metrics
        self.idleTimeout = idleTimeout
        self.enabled = auth.configuration.rotation == .off && !auth.configuration.cookieMode
    }

    // MARK: inbound

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armIdleTimer(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdleTimer(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .answering: held.append(part)
        case .refusing: break  // the connection closes after the refusal
        case .idle, .reading: process(part, context: context)
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

    private func process(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch (state, part) {
        case (.idle, .head(let head)):
            if let refusal = Self.refusal(of: head) {
                if forwarded == 0 { refuse(refusal, context: context) } else { state = .refusing(refusal) }
                return
            }
            if enabled, forwarded == 0, head.method == .GET, let route = Self.route(of: head.uri) {
                // The request must be complete within the timeout: a trickled request is cut off
                // like a trickled head.
                armIdleTimer(context)
                state = .reading(route, head)
            } else {
                // Hummingbird's request: the clock keeps running, with twice the time, so that a
                // connection whose answers stop (e.g. after `Connection: close`) is still closed.
                armIdleTimer(context)
                // `Expect: 100-continue`: the client waits (curl: 1 s) before sending its body.
                // Answered only when no earlier answer is pending, which would otherwise be overtaken.
                if forwarded == 0, head.version == .http1_1, head.headers["Expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                    context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
                }
                forwarded += 1
                context.fireChannelRead(wrapInboundOut(part))
            }
        case (.reading, .body):
            break  // a GET body means nothing to these routes
        case (.reading(let route, let head), .end):
            stopIdleClock()
            closeRequested = !head.isKeepAlive
            state = .answering
            answer(route, head, context: context)
        case (.idle, .body), (.idle, .end):
            context.fireChannelRead(wrapInboundOut(part))
        case (.reading, .head), (.answering, _):
            // A head before the last request ended cannot come from the HTTP/1 decoder.
            context.close(promise: nil)
        case (.refusing, _):
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A bad request pipelined behind one of ours must not be answered (or close the
        // connection) before ours is.
        switch state {
        case .answering: heldError = error
        case .refusing: break  // the connection closes after the refusal
        case .idle, .reading: context.fireErrorCaught(error)
        }
    }

    func read(context: ChannelHandlerContext) {
        if mayRead(context) {
            context.read()
        } else {
            readRequested = true
        }
    }

    /// Reading stops once input has piled up behind a pending answer (a pipelining client), and
    /// while the peer does not take our answers (the channel is not writable: the write buffer is
    /// past its high-water mark). So a connection holds at most one read cycle of requests and a
    /// write buffer of answers, however much a client pipelines without reading. Holding back every
    /// read while an answer is pending would cost two `epoll_ctl` calls per request (NIO drops the
    /// socket's read interest when no read is pending, and adds it back on the next read).
    private func mayRead(_ context: ChannelHandlerContext) -> Bool {
        if case .answering = state, !held.isEmpty { return false }
        if case .refusing = state { return false }
        return context.channel.isWritable
    }

    /// Passes on a read that `read` held back, once it is allowed.
    private func resumeReading(_ context: ChannelHandlerContext) {
        guard readRequested, mayRead(context) else { return }
        readRequested = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resumeReading(context)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Graceful shutdown: finish our answer first; Hummingbird then closes the connection.
            switch state {
            case .idle where forwarded == 0:
                context.close(promise: nil)
                return
            case .idle:
                break
            case .reading, .answering, .refusing:
                quiesceHeld = true
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: outbound (Hummingbird's answers pass through here)

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        forwarded -= 1
        context.write(data, promise: promise)
        switch state {
        case .idle: armIdleTimer(context)
        case .refusing(let refusal) where forwarded == 0: refuse(refusal, context: context)
        case .refusing, .reading, .answering: break
        }
    }

    /// Answers a refused request head and closes the connection (what follows the head cannot be
    /// trusted to be framed as the client meant).
    private func refuse(_ refusal: TokenGateError, context: ChannelHandlerContext) {
        metrics.countRequest(route: "unmatched", status: refusal.status.code)
        var parts = refusal.responseParts
        parts.headers[.connection] = "close"
        writeAnswer(.refused(parts), context: context)
        state = .answering
        context.close(promise: nil)
    }

    // MARK: the fast path

    /// The route of an origin-form request target (an absolute-form one goes to Hummingbird).
    static func route(of uri: String) -> Route? {
        let plain = uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { uri[..<$0] } ?? Substring(uri)
        return Route(rawValue: String(plain))
    }

    private func answer(_ route: Route, _ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let started = ContinuousClock.now
        let token: Substring
        do {
            guard let bearer = try HeaderParsing.bearer(authorization: head.headers["Authorization"]) else {
                throw TokenGateError.missingToken
            }
            token = bearer
        } catch {
            respond(route, .refused(TokenGateError.responseParts(for: error)), context: context)
            return
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        auth.authenticate(token.utf8, activity: true, on: context.eventLoop) { result in
            let handler = loopBound.value
            handler.metrics.recordVerify(ContinuousClock.now - started)
            switch result {
            case .success(let identity):
                handler.respond(route, route == .me ? .me(identity) : .verified(identity), context: contextBound.value)
            case .failure(let error):
                handler.respond(route, .refused(TokenGateError.responseParts(for: error)), context: contextBound.value)
            }
        }
    }

    private func respond(_ route: Route, _ answer: Answer, context: ChannelHandlerContext) {
        switch answer {
        case .verified, .me:
            if okCounter?.route != route { okCounter = (route, metrics.requestCounter(route: route.rawValue, status: 200)) }
            okCounter?.counter.increment()
        case .refused(let parts):
            metrics.countRequest(route: route.rawValue, status: parts.status.code)
        }
        writeAnswer(answer, context: context)
        state = .idle
        if quiesceHeld || closeRequested {
            context.close(promise: nil)
            return
        }
        // An answer that completed while replaying (a failed check answers at once): the replay
        // loop below, further up the stack, goes on with the next input.
        guard !draining else { return }
        draining = true
        // Input that waited for this answer, in order; it may start another answer of ours.
        let replaying = !held.isEmpty
        while let part = held.popFirst() {
            process(part, context: context)
            if case .answering = state { break }
        }
        draining = false
        // Hummingbird's inbound stream takes what it was given at the end of a read cycle.
        if replaying { context.fireChannelReadComplete() }
        if case .answering = state { return }
        if let error = heldError {
            heldError = nil
            context.fireErrorCaught(error)
        }
        if case .idle = state { armIdleTimer(context) }
        resumeReading(context)
    }

    /// Writes an answer as HTTP1ToHTTPServerCodec would write the same HTTPResponse, through NIO's
    /// encoder (which frames it for its request's method). Every earlier answer has been written
    /// (the order above guarantees it), so this one follows it.
    private func writeAnswer(_ answer: Answer, context: ChannelHandlerContext) {
        let head: HTTPResponseHead
        var body = ByteBuffer()
        switch answer {
        case .verified(let identity):
            head = HTTPAnswer.verified(identity)
        case .me(let identity):
            body = ServiceRoutes.me(identity, expiresIn: auth.secondsLeft(identity))
            head = HTTPAnswer.me(bodyLength: body.readableBytes)
        case .refused(let parts):
            body = parts.body
            head = HTTPAnswer.head(parts)
        }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Starts the idle clock. One timer per connection checks it, so a request costs a clock
    /// read, not a scheduled task.
    private func armIdleTimer(_ context: ChannelHandlerContext) {
        idleSince = .now()
        if idleTimer == nil { scheduleIdleCheck(context, at: .now() + idleTimeout) }
    }

    private func stopIdleClock() {
        idleSince = nil
    }

    private func scheduleIdleCheck(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            handler.idleTimer = nil
            // Busy (a request being answered): the clock restarts when the answer is written.
            guard let since = handler.idleSince else { return }
            let expiry = since + (handler.forwarded > 0 ? handler.idleTimeout * 2 : handler.idleTimeout)
            if expiry <= .now() {
                context.close(promise: nil)
            } else {
                handler.scheduleIdleCheck(context, at: expiry)
            }
        }
    }
}

extension FastPathHandler {
    /// What Hummingbird's `additionalChannelHandlers` adds (behind `HTTP1ToHTTPServerCodec`): it puts
    /// the fast path ahead of the codec, then leaves the pipeline.
    final class Installer: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = Never
        private let make: () -> FastPathHandler

        init(_ make: @escaping () -> FastPathHandler) { self.make = make }

        func handlerAdded(context: ChannelHandlerContext) {
            let pipeline = context.pipeline.syncOperations
            do {
                let codec = try pipeline.context(handlerType: HTTP1ToHTTPServerCodec.self)
                try pipeline.addHandler(make(), position: .before(codec.handler))
                pipeline.removeHandler(context: context, promise: nil)
            } catch {
                context.fireErrorCaught(error)
                context.close(promise: nil)
            }
        }
    }
}
