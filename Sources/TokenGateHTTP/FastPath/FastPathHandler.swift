import Hummingbird
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import Prometheus
import TokenGate

/// The hot path, in the channel pipeline: the `HotRoute`s are answered here, on the connection's
/// event loop, with one signature check and one Redis round trip, without a task, the router or
/// the middleware chain. Every other request goes on to Hummingbird unchanged.
///
/// It sits right behind NIO's HTTP/1 decoder and encoder, ahead of the conversion to HTTP types
/// (`HTTP1ToHTTPServerCodec`): the hot requests are read and answered as NIO's HTTP/1 parts and
/// never converted (`Installer` puts the handler there).
///
/// The handler is a shell: `FastPathStateMachine` decides (which requests are ours, the order of
/// answers, when reading pauses, the idle clock that replaces Hummingbird's) and the handler does
/// what it returns. The answers are the routes' (`HotRoute.answer`, the errors'
/// `TokenGateError.responseParts`), counted in the same metrics.
final class FastPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let auth: AuthService
    private let metrics: Metrics
    private var machine: FastPathStateMachine<SuspendingClock>
    /// The idle clock's one scheduled check.
    private var idleCheck: Scheduled<Void>?
    /// The 200 counter of the route this connection asked for last (counting takes no lock).
    private var okCounter: (route: HotRoute, counter: Counter)?

    /// `answersHotRoutes: false` (the service API's listener) keeps only the connection handling:
    /// the idle clock, the order of answers and the pause of reading.
    init(auth: AuthService, metrics: Metrics, idleTimeout: Duration, answersHotRoutes: Bool = true) {
        self.auth = auth
        self.metrics = metrics
        self.machine = FastPathStateMachine(
            answersHotRoutes: answersHotRoutes && HotRoute.answeredInPipeline(auth.configuration),
            clock: SuspendingClock(),  // CLOCK_MONOTONIC, as NIO's timers
            idleTimeout: idleTimeout
        )
    }

    // MARK: the connection

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { scheduleIdleCheck(context, after: machine.idleClock.timeout) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if idleCheck == nil { scheduleIdleCheck(context, after: machine.idleClock.timeout) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
        context.fireChannelInactive()
    }

    private func scheduleIdleCheck(_ context: ChannelHandlerContext, after delay: Duration) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleCheck = context.eventLoop.scheduleTask(in: TimeAmount(delay)) {
            let (handler, context) = bound.value
            // A check already taken off the loop's queue when the connection closed (cancelling
            // it came too late) must not schedule another.
            guard handler.idleCheck != nil, context.channel.isActive else { return }
            switch handler.machine.checkIdle() {
            case .close:
                handler.idleCheck = nil
                context.close(promise: nil)
            case .checkAgain(let delay):
                handler.scheduleIdleCheck(context, after: delay)
            }
        }
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        perform(machine.read(unwrapInboundIn(data)), context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if machine.errorCaught(error) { context.fireErrorCaught(error) }
    }

    func read(context: ChannelHandlerContext) {
        if machine.readRequested(isWritable: context.channel.isWritable) { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if machine.resumeRead(isWritable: context.channel.isWritable) { context.read() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            switch machine.quiesce() {
            case .close:
                context.close(promise: nil)
                return
            case .hold:
                return
            case .passOn:
                break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func perform(_ action: FastPathStateMachine<SuspendingClock>.ReadAction, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .forward(let part):
            context.fireChannelRead(wrapInboundOut(part))
        case .forwardAfterContinue(let part):
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
            context.fireChannelRead(wrapInboundOut(part))
        case .answer(let route, let head):
            answer(route, head, context: context)
        case .refuse(let refusal):
            refuse(refusal, context: context)
        case .close:
            context.close(promise: nil)
        }
    }

    // MARK: outbound (Hummingbird's answers pass through here)

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        context.write(data, promise: promise)
        if let refusal = machine.hummingbirdAnswered() { refuse(refusal, context: context) }
    }

    // MARK: the fast path

    /// Answers a refused request head and closes the connection (what follows the head cannot be
    /// trusted to be framed as the client meant).
    private func refuse(_ refusal: TokenGateError, context: ChannelHandlerContext) {
        metrics.countRequest(route: "unmatched", status: refusal.status.code)
        var parts = refusal.responseParts
        parts.headers[.connection] = "close"
        write(HTTPAnswer.head(parts), parts.body, context: context)
        context.close(promise: nil)
    }

    private func answer(_ route: HotRoute, _ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let started = ContinuousClock.now
        let token: Substring
        do throws(TokenGateError) {
            guard let bearer = try HeaderParsing.bearer(authorization: head.headers["Authorization"]) else {
                throw TokenGateError.missingToken
            }
            token = bearer
        } catch {
            respond(route, .failure(error), context: context)
            return
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        auth.authenticate(token.utf8, activity: true, on: context.eventLoop) { result in
            let handler = loopBound.value
            handler.metrics.recordVerify(ContinuousClock.now - started)
            handler.respond(route, result.map { $0.identity }, context: contextBound.value)
        }
    }

    private func respond(_ route: HotRoute, _ result: Result<VerifiedToken, TokenGateError>, context: ChannelHandlerContext) {
        switch result {
        case .success(let identity):
            if okCounter?.route != route { okCounter = (route, metrics.requestCounter(route: route.path, status: 200)) }
            okCounter?.counter.increment()
            let (head, body) = route.answer(to: identity, expiresIn: auth.secondsLeft(identity))
            write(head, body, context: context)
        case .failure(let error):
            let parts = error.responseParts
            metrics.countRequest(route: route.path, status: parts.status.code)
            write(HTTPAnswer.head(parts), parts.body, context: context)
        }
        switch machine.answerWritten(isWritable: context.channel.isWritable) {
        case .close:
            context.close(promise: nil)
        case .resumeReplay:
            break
        case .replay:
            // Input that waited for this answer, in order; it may start another answer of ours.
            while let action = machine.nextHeld() { perform(action, context: context) }
            finish(machine.replayFinished(isWritable: context.channel.isWritable), context: context)
        case .done(let end):
            finish(end, context: context)
        }
    }

    private func finish(_ end: FastPathStateMachine<SuspendingClock>.ReplayEnd, context: ChannelHandlerContext) {
        // Hummingbird's inbound stream takes what it was given at the end of a read cycle.
        if end.readComplete { context.fireChannelReadComplete() }
        if let error = end.error { context.fireErrorCaught(error) }
        if end.read { context.read() }
    }

    /// Writes an answer as HTTP1ToHTTPServerCodec would write the same HTTPResponse, through NIO's
    /// encoder (which frames it for its request's method). Every earlier answer has been written
    /// (the state machine's order guarantees it), so this one follows it.
    private func write(_ head: HTTPResponseHead, _ body: ByteBuffer, context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

extension FastPathHandler {
    /// What Hummingbird's `additionalChannelHandlers` adds (behind `HTTP1ToHTTPServerCodec`): it
    /// puts the fast path ahead of the codec, then leaves the pipeline. It finds the codec, an
    /// internal type of Hummingbird, by type; a test fails if a Hummingbird release moves it.
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
