import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// One TCP connection to Redis with pipelining: many commands in flight, replies matched in order.
///
/// Writes made during one event-loop tick are flushed together, so concurrent requests share
/// one `write(2)` and Redis reads them as one pipeline.
final class RedisConnection: Sendable {
    let channel: any Channel
    private let flushScheduled: NIOLoopBoundBox<Bool>
    private let timeout: TimeAmount

    private init(channel: any Channel, timeout: TimeAmount) {
        self.channel = channel
        self.timeout = timeout
        self.flushScheduled = NIOLoopBoundBox.makeBoxSendingValue(false, eventLoop: channel.eventLoop)
    }

    /// Sends RESP bytes; the future completes with the reply (an `.error` reply is a value here).
    func send(_ bytes: ByteBuffer) -> EventLoopFuture<RESPValue> {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        send(bytes, replyOn: channel.eventLoop) { promise.completeWith($0.mapError { $0 as any Error }) }
        return promise.futureResult
    }

    /// Sends RESP bytes; `reply` runs on `loop` with the reply (an `.error` reply is a value here)
    /// or the connection's failure. On the connection's own loop nothing is allocated for the reply
    /// but its closure (a future and its callback list were 3 % of a verify, bench/profile).
    func send(_ bytes: ByteBuffer, replyOn loop: any EventLoop, _ reply: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void) {
        let own = channel.eventLoop
        let deliver: @Sendable (Result<RESPValue, RedisError>) -> Void
        if loop === own {
            deliver = reply
        } else {
            deliver = { result in loop.execute { reply(result) } }
        }
        let command = OutgoingCommand(bytes: bytes, reply: deliver, deadline: own.now + timeout)
        if own.inEventLoop {
            enqueue(command)
        } else {
            own.execute { self.enqueue(command) }
        }
    }

    private func enqueue(_ command: OutgoingCommand) {
        // On the loop, an active channel still has its handler; a closing one may not, and a write
        // that reached no handler would leave the command waiting forever.
        guard channel.isActive else {
            command.reply(.failure(RedisError(.connectionClosed, "connection closed")))
            return
        }
        channel.write(command, promise: nil)
        guard !flushScheduled.value else { return }
        flushScheduled.value = true
        channel.eventLoop.execute {
            self.flushScheduled.value = false
            self.channel.flush()
        }
    }

    /// Closes the connection; waiting commands fail with `connectionClosed`.
    func close() {
        channel.close(promise: nil)
    }

    /// Connects (over TLS when `tls` is given), authenticates and selects the database. Any failure
    /// closes the channel.
    static func connect(
        to configuration: RedisConfiguration,
        tls: NIOSSLContext?,
        on eventLoop: any EventLoop
    ) async throws(RedisError) -> RedisConnection {
        let timeout = TimeAmount(configuration.timeout)
        let host: String
        let port: Int
        switch configuration.endpoint {
        case .standalone(let h, let p): (host, port) = (h, p)
        }
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(timeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls, let settings = configuration.tls {
                            try channel.pipeline.syncOperations.addHandler(settings.handler(context: tls, host: host))
                        }
                        try channel.pipeline.syncOperations.addHandler(RedisChannelHandler(timeout: timeout))
                    }
                }
                .connect(host: host, port: port)
                .get()
        } catch {
            throw RedisError(.connectionFailed, "cannot connect to \(host):\(port): \(error)")
        }
        let connection = RedisConnection(channel: channel, timeout: timeout)
        do throws(RedisError) {
            if let password = configuration.password {
                let auth = configuration.username.map { ["AUTH", $0, password] } ?? ["AUTH", password]
                try await connection.handshake(auth)
            }
            if configuration.database != 0 {
                try await connection.handshake(["SELECT", String(configuration.database)])
            }
            // A server that accepts TCP but cannot answer (maxclients, a long script) is not a connection.
            // Over TLS this is also where the TLS handshake happens (or fails: an untrusted certificate,
            // a plaintext port).
            try await connection.handshake(["PING"])
        } catch {
            connection.close()
            if tls != nil { throw RedisError(error.kind, "TLS to \(host):\(port): \(error.message)") }
            throw error
        }
        return connection
    }

    private func handshake(_ arguments: [String]) async throws(RedisError) {
        var buffer = channel.allocator.buffer(capacity: 64)
        try RESPEncoder.encode(arguments, into: &buffer)
        let reply: RESPValue
        do {
            reply = try await send(buffer).get()
        } catch {
            throw RedisError(.connectionFailed, "\(arguments[0]) got no answer: \(error)")
        }
        if case .error(let message) = reply {
            throw RedisError(.connectionFailed, "\(arguments[0]) refused: \(message)")
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
