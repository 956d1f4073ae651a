import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// An async Redis client: hiredis as the RESP codec, SwiftNIO for the sockets.
///
/// Commands from concurrent callers are pipelined over a few connections (one per event loop by
/// default). A caller running on one of the client's event loops uses that loop's connection, so
/// its command never crosses threads; other callers are spread round-robin. Nothing ever blocks a
/// thread waiting for Redis.
///
/// Connections are made lazily, re-made after any error, and backed off (100 ms doubling to 2 s)
/// while Redis cannot be reached; during a back-off commands go to another open connection if
/// there is one, else fail at once with `.unavailable`.
/// Run it as a `Service` so graceful shutdown closes its connections.
public final class RedisClient: Sendable {
    /// The configuration the client was made with.
    public let configuration: RedisConfiguration
    private let slots: [Slot]
    private let slotByLoop: [ObjectIdentifier: Int]
    private let nextSlot = Atomic<Int>(0)
    private let connects = Atomic<Int>(0)
    private let commands = Atomic<Int>(0)
    private let logger: Logger
    /// The TLS context (`rediss://`), made once from the configuration's files; a failure is every
    /// connect's failure (the service checks the files at start-up, `RedisConfiguration.TLS.makeContext`).
    private let tls: Result<NIOSSLContext, RedisTLSError>?

    /// Creates a client; no connection is made until the first command.
    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "tokengate.redis")
    ) {
        self.configuration = configuration
        self.tls = configuration.tls.map { tls in Result { () throws(RedisTLSError) in try tls.makeContext() } }
        self.logger = logger
        var loops: [any EventLoop] = []
        var iterator = eventLoopGroup.makeIterator()
        while let loop = iterator.next() { loops.append(loop) }
        let count = max(1, configuration.connectionCount)
        self.slots = (0..<count).map { Slot(eventLoop: loops[$0 % loops.count]) }
        var byLoop: [ObjectIdentifier: Int] = [:]
        for (index, slot) in slots.enumerated() where byLoop[ObjectIdentifier(slot.eventLoop)] == nil {
            byLoop[ObjectIdentifier(slot.eventLoop)] = index
        }
        self.slotByLoop = byLoop
    }

    /// How many connections the client has opened so far (for tests and metrics).
    public var connectionsOpened: Int { connects.load(ordering: .relaxed) }

    /// How many commands the client has sent so far (scripts count as one: what goes on the wire).
    public var commandsSent: Int { commands.load(ordering: .relaxed) }

    /// Sends one command and returns its reply. An error reply from Redis is thrown as `.server`.
    public func send(_ arguments: [String]) async throws(RedisError) -> RESPValue {
        do {
            return try await sendFuture(arguments).get()
        } catch {
            throw error as? RedisError ?? RedisError(.connectionClosed, "\(error)")
        }
    }

    /// Runs a Lua script by `EVALSHA`, falling back to `EVAL` (which also caches it) on `NOSCRIPT`.
    public func run(_ script: RedisScript, keys: [String], arguments: [String]) async throws(RedisError) -> RESPValue {
        do {
            return try await runFuture(script, keys: keys, arguments: arguments).get()
        } catch {
            throw error as? RedisError ?? RedisError(.connectionClosed, "\(error)")
        }
    }

    /// `run` as a future, for callers that live on an event loop (a channel handler). The reply
    /// arrives on `eventLoop` (default: the connection's). With a connection already open on the
    /// caller's loop nothing leaves the loop: no task, no thread hop.
    public func runFuture(
        _ script: RedisScript,
        keys: [String],
        arguments: [String],
        on eventLoop: (any EventLoop)? = nil
    ) -> EventLoopFuture<RESPValue> {
        let slot = pickSlot()
        let loop = eventLoop ?? slot.eventLoop
        let promise = loop.makePromise(of: RESPValue.self)
        run(script, keys: keys, arguments: arguments, on: loop, slot: slot) { promise.completeWith($0.mapError { $0 }) }
        return promise.futureResult
    }

    /// `run` with a callback, called on `eventLoop` with the reply or a `RedisError` (an error
    /// reply is a failure). The hot path's form: one future (the connection's) and one callback,
    /// where chaining futures would allocate one per step.
    public func run(
        _ script: RedisScript,
        keys: [String],
        arguments: [String],
        on eventLoop: any EventLoop,
        _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void
    ) {
        run(script, keys: keys, arguments: arguments, on: eventLoop, slot: pickSlot(), completion)
    }

    private func run(
        _ script: RedisScript,
        keys: [String],
        arguments: [String],
        on eventLoop: any EventLoop,
        slot: Slot,
        _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void
    ) {
        var command: [String] = []
        command.reserveCapacity(3 + keys.count + arguments.count)
        command.append("EVALSHA")
        command.append(script.sha1)
        command.append(String(keys.count))
        command.append(contentsOf: keys)
        command.append(contentsOf: arguments)
        send(command, on: eventLoop, slot: slot) { [command] result in
            switch Self.reply(result) {
            case .failure(let error) where error.isNoScript:
                self.logger.debug("script not cached in Redis; sending it with EVAL", metadata: ["script": "\(script.name)"])
                var eval = command
                eval[0] = "EVAL"
                eval[1] = script.source
                self.send(eval, on: eventLoop, slot: slot) { completion(Self.reply($0)) }
            case let other:
                completion(other)
            }
        }
    }

    /// A reply as the callers see it: an error reply is a `RedisError` too.
    private static func reply(_ result: Result<RESPValue, RedisError>) -> Result<RESPValue, RedisError> {
        switch result {
        case .success(.error(let message)): .failure(RedisError(.server, message))
        case let other: other
        }
    }

    /// `send` as a future on `eventLoop` (default: the connection's); it fails with a `RedisError`.
    public func sendFuture(_ arguments: [String], on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<RESPValue> {
        let slot = pickSlot()
        let loop = eventLoop ?? slot.eventLoop
        let promise = loop.makePromise(of: RESPValue.self)
        send(arguments, on: loop, slot: slot) { promise.completeWith(Self.reply($0).mapError { $0 as any Error }) }
        return promise.futureResult
    }

    /// The command's raw reply (an error reply is a success here) on `loop`, through `slot`'s
    /// connection (or another open one while it backs off).
    private func send(
        _ arguments: [String],
        on loop: any EventLoop,
        slot: Slot,
        _ reply: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void
    ) {
        var buffer = ByteBuffer()
        do { try RESPEncoder.encode(arguments, into: &buffer) } catch {
            loop.execute { reply(.failure(error)) }
            return
        }
        if let open = openConnection(preferring: slot) {
            commands.add(1, ordering: .relaxed)
            open.send(buffer, replyOn: loop, reply)
        } else {
            // Connecting (or backing off) is the rare path: the async code handles it.
            loop.makeFutureWithTask { [buffer] in
                let connection = try await self.connection(for: slot)
                self.commands.add(1, ordering: .relaxed)
                return try await connection.send(buffer).get()
            }.whenComplete { result in
                reply(result.mapError { $0 as? RedisError ?? RedisError(.connectionClosed, "\($0)") })
            }
        }
    }

    /// Closes every connection; later commands fail with `.shutdown`.
    public func shutdown() {
        for slot in slots {
            let old = slot.state.withLock { state -> RedisConnection? in
                defer { state = .shutdown }
                if case .connected(let connection) = state { return connection }
                return nil
            }
            old?.close()
        }
    }

    /// The slot's connection; while that slot is backing off after a failure, another slot's open
    /// connection (Redis may be back while this one waits out its delay). Nil: connect (or fail)
    /// through the slot.
    private func openConnection(preferring slot: Slot) -> RedisConnection? {
        let (connection, backingOff) = slot.state.withLock { state -> (RedisConnection?, Bool) in
            switch state {
            case .connected(let connection): (connection, false)
            case .idle(_, let retryAt): (nil, NIODeadline.now() < retryAt)
            case .connecting, .shutdown: (nil, false)
            }
        }
        if let connection { return connection }
        guard backingOff else { return nil }
        for other in slots where other !== slot {
            let found = other.state.withLock { state -> RedisConnection? in
                if case .connected(let connection) = state { return connection }
                return nil
            }
            if let found { return found }
        }
        return nil
    }

    private func pickSlot() -> Slot {
        if slots.count == 1 { return slots[0] }
        if let loop = MultiThreadedEventLoopGroup.currentEventLoop, let index = slotByLoop[ObjectIdentifier(loop)] {
            return slots[index]
        }
        let index = nextSlot.wrappingAdd(1, ordering: .relaxed).oldValue
        return slots[index % slots.count]
    }

    private func connection(for slot: Slot) async throws(RedisError) -> RedisConnection {
        enum Action {
            case use(RedisConnection)
            case wait(EventLoopFuture<RedisConnection>)
            case connect(EventLoopPromise<RedisConnection>, failures: Int)
            case fail(RedisError)
        }
        let action = slot.state.withLock { state -> Action in
            switch state {
            case .connected(let connection):
                return .use(connection)
            case .connecting(let future):
                return .wait(future)
            case .idle(let failures, let retryAt):
                if NIODeadline.now() < retryAt {
                    return .fail(RedisError(.unavailable, "Redis unreachable; retrying shortly"))
                }
                let promise = slot.eventLoop.makePromise(of: RedisConnection.self)
                state = .connecting(promise.futureResult)
                return .connect(promise, failures: failures)
            case .shutdown:
                return .fail(RedisError(.shutdown, "client shut down"))
            }
        }
        switch action {
        case .use(let connection):
            return connection
        case .fail(let error):
            throw error
        case .wait(let future):
            do {
                return try await future.get()
            } catch {
                throw error as? RedisError ?? RedisError(.connectionFailed, "\(error)")
            }
        case .connect(let promise, let failures):
            do throws(RedisError) {
                let tlsContext: NIOSSLContext?
                switch tls {
                case nil: tlsContext = nil
                case .success(let context): tlsContext = context
                case .failure(let error): throw RedisError(.connectionFailed, error.description)
                }
                let connection = try await RedisConnection.connect(to: configuration, tls: tlsContext, on: slot.eventLoop)
                connects.add(1, ordering: .relaxed)
                let keep = slot.state.withLock { state -> Bool in
                    guard case .connecting = state else { return false }  // shut down meanwhile
                    state = .connected(connection)
                    return true
                }
                guard keep else {
                    connection.close()
                    promise.fail(RedisError(.shutdown, "client shut down"))
                    throw RedisError(.shutdown, "client shut down")
                }
                connection.channel.closeFuture.whenComplete { _ in
                    slot.state.withLock { state in
                        if case .connected(let current) = state, current === connection {
                            state = .idle(failures: 0, retryAt: .now())
                        }
                    }
                }
                promise.succeed(connection)
                return connection
            } catch {
                let backoff = TimeAmount.milliseconds(min(2_000, 100 << min(failures, 5)))
                slot.state.withLock { state in
                    if case .connecting = state { state = .idle(failures: failures + 1, retryAt: .now() + backoff) }
                }
                if failures == 0 {
                    logger.warning("Redis connection failed", metadata: ["error": "\(error.message)"])
                }
                promise.fail(error)
                throw error
            }
        }
    }

    private final class Slot: Sendable {
        enum State {
            case idle(failures: Int, retryAt: NIODeadline)
            case connecting(EventLoopFuture<RedisConnection>)
            case connected(RedisConnection)
            case shutdown
        }
        let eventLoop: any EventLoop
        let state = Mutex<State>(.idle(failures: 0, retryAt: .uptimeNanoseconds(0)))
        init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }
    }
}

extension RedisClient: Service {
    /// Waits for graceful shutdown, then closes the connections.
    public func run() async throws {
        try? await gracefulShutdown()
        shutdown()
    }
}
