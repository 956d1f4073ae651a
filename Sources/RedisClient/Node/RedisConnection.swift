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

    /// Sends one command's RESP bytes and returns its reply (an `.error` reply is a value here).
    func send(_ bytes: ByteBuffer) async throws(RedisError) -> RESPValue {
        try await awaiting { send(bytes, replies: 1, replyOn: channel.eventLoop, $0) }
    }

    /// Sends RESP bytes holding `replies` commands; `reply` runs on `loop` once per reply, in order
    /// (an `.error` reply is a value here), or once with the connection's failure. On the
    /// connection's own loop nothing is allocated for the reply but its closure (a future and its
    /// callback list were 3 % of a verify, bench/profile).
    func send(
        _ bytes: ByteBuffer,
        replies: Int,
        replyOn loop: any EventLoop,
        _ reply: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void
    ) {
        let own = channel.eventLoop
        let deliver: @Sendable (Result<RESPValue, RedisError>) -> Void
        if loop === own {
            deliver = reply
        } else {
            deliver = { result in loop.execute { reply(result) } }
        }
        let command = OutgoingCommand(bytes: bytes, replies: replies, reply: deliver, deadline: own.now + timeout)
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

    /// How to open a connection: credentials, database, timeout, TLS, and whether only a primary
    /// will do.
    struct Settings: Sendable {
        var username: String?
        var password: String?
        var database: Int
        var timeout: Duration
        /// The TLS settings and the context made from them (a failure is every connect's failure).
        var tls: (settings: RedisConfiguration.TLS, context: Result<NIOSSLContext, RedisTLSError>)?
        /// Check with `ROLE` that the server is a primary before serving anything (Sentinel: the
        /// address a sentinel gave may have been demoted since).
        var requirePrimary = false
    }

    /// Connects (over TLS when the settings say so), authenticates, selects the database and, when
    /// asked, checks the server is a primary. Any failure closes the channel.
    static func connect(
        to address: RedisAddress,
        settings: Settings,
        on eventLoop: any EventLoop,
        onPush: (@Sendable (RESPValue) -> Void)? = nil
    ) async throws(RedisError) -> RedisConnection {
        let timeout = TimeAmount(settings.timeout)
        let (host, port) = (address.host, address.port)
        var tls: (settings: RedisConfiguration.TLS, context: NIOSSLContext)?
        switch settings.tls {
        case nil: tls = nil
        case let (tlsSettings, .success(context))?: tls = (tlsSettings, context)
        case (_, .failure(let error))?: throw RedisError(.connectionFailed, error.description)
        }
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                // TCP_NODELAY is ClientBootstrap's default (a TCP-level option). The SOL_SOCKET-level
                // `.socketOption(.tcp_nodelay)` this once set is SO_DEBUG, which needs CAP_NET_ADMIN:
                // as a non-root user (the image's 10001) every connection failed with EACCES.
                .connectTimeout(timeout)
                .channelInitializer { [tls] channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(tls.settings.handler(context: tls.context, host: host))
                        }
                        try channel.pipeline.syncOperations.addHandler(RedisChannelHandler(timeout: timeout, onPush: onPush))
                    }
                }
                .connect(host: host, port: port)
                .get()
        } catch {
            throw RedisError(.connectionFailed, "cannot connect to \(address): \(error)")
        }
        let connection = RedisConnection(channel: channel, timeout: timeout)
        do throws(RedisError) {
            if let password = settings.password {
                let auth = settings.username.map { ["AUTH", $0, password] } ?? ["AUTH", password]
                try await connection.handshake(auth)
            }
            if settings.database != 0 {
                try await connection.handshake(["SELECT", String(settings.database)])
            }
            // A server that accepts TCP but cannot answer (maxclients, a long script) is not a connection.
            // Over TLS this is also where the TLS handshake happens (or fails: an untrusted certificate,
            // a plaintext port).
            try await connection.handshake(["PING"])
            if settings.requirePrimary {
                let role = try await connection.handshake(["ROLE"])
                guard let parsed = RedisRole(role), parsed.isPrimary else {
                    throw RedisError(.connectionFailed, "\(address) is not a primary (ROLE: \(RedisRole(role)?.name ?? "unknown"))")
                }
            }
        } catch {
            connection.close()
            if tls != nil { throw RedisError(error.kind, "TLS to \(address): \(error.message)") }
            throw error
        }
        return connection
    }

    /// Sends one command (outside the pipelined lanes: handshakes, sentinels) and returns its
    /// reply; an error reply is thrown as `.server`.
    func command(_ arguments: [String]) async throws(RedisError) -> RESPValue {
        var buffer = channel.allocator.buffer(capacity: 64)
        try RESPEncoder.encode(arguments, into: &buffer)
        let reply = try await send(buffer)
        if case .error(let message) = reply { throw RedisError(.server, message) }
        return reply
    }

    /// A step of the connection's handshake: any failure is `.connectionFailed`.
    @discardableResult
    private func handshake(_ arguments: [String]) async throws(RedisError) -> RESPValue {
        do {
            return try await command(arguments)
        } catch let error where error.kind == .server {
            throw RedisError(.connectionFailed, "\(arguments[0]) refused: \(error.message)")
        } catch {
            throw RedisError(.connectionFailed, "\(arguments[0]) got no answer: \(error)")
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
