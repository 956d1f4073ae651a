import NIOCore

/// Commands on their way to Redis: their RESP bytes, how many replies they get, and what takes
/// those (called on the connection's event loop once per reply, in order, or once with the
/// connection's failure).
struct OutgoingCommand: Sendable {
    var bytes: ByteBuffer
    var replies: Int = 1
    var reply: @Sendable (Result<RESPValue, RedisError>) -> Void
    var deadline: NIODeadline
}

/// Pipelines commands over one connection: replies arrive in the order commands were written,
/// so each reply goes to the oldest waiting command.
///
/// Any failure (timeout, reset, protocol error) fails every waiting command and closes the
/// channel: a connection that lost its place in the reply stream is never reused.
///
/// A subscriber connection (`onPush`) also takes replies that no command waits for: the
/// messages of the channels it subscribed to.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = OutgoingCommand
    typealias OutboundOut = ByteBuffer

    private var waiting = CircularBuffer<OutgoingCommand>(initialCapacity: 64)
    private let decoder = RESPDecoder()
    private var failure: RedisError?
    private var timer: RepeatedTask?
    private let checkInterval: TimeAmount
    private let onPush: (@Sendable (RESPValue) -> Void)?

    init(timeout: TimeAmount, onPush: (@Sendable (RESPValue) -> Void)? = nil) {
        self.onPush = onPush
        // Look at the oldest command's deadline ten times per timeout (at least every 10 ms).
        self.checkInterval = .nanoseconds(max(10_000_000, timeout.nanoseconds / 10))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: checkInterval, delay: checkInterval) { _ in
            let (handler, context) = bound.value
            handler.checkDeadline(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        failAll(RedisError(.connectionClosed, "connection closed"))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let command = unwrapOutboundIn(data)
        if let failure {
            command.reply(.failure(failure))
            promise?.fail(failure)
            return
        }
        waiting.append(command)
        context.write(wrapOutboundOut(command.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try decoder.feed(unwrapInboundIn(data))
            while let reply = try decoder.next() {
                guard let command = waiting.first else {
                    guard let onPush else { throw RedisError(.protocolError, "reply with no command waiting") }
                    onPush(reply)
                    continue
                }
                if command.replies > 1 {
                    waiting[waiting.startIndex].replies -= 1
                } else {
                    waiting.removeFirst()
                }
                command.reply(.success(reply))
            }
        } catch {
            fail(context: context, error)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError(.connectionClosed, "connection closed by peer"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, RedisError(.connectionClosed, "connection error: \(error)"))
    }

    private func checkDeadline(context: ChannelHandlerContext) {
        guard let oldest = waiting.first, oldest.deadline < context.eventLoop.now else { return }
        fail(context: context, RedisError(.timeout, "no reply within the command timeout"))
    }

    private func fail(context: ChannelHandlerContext, _ error: any Error) {
        failAll(error as? RedisError ?? RedisError(.protocolError, "\(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisError) {
        if failure == nil { failure = error }
        while let command = waiting.popFirst() {
            command.reply(.failure(error))
        }
    }
}
