import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// One Redis server at one address: hiredis as the RESP codec, SwiftNIO for the sockets.
///
/// Commands from concurrent callers are pipelined over a few connections (one per event loop by
/// default). A caller running on one of the client's event loops uses that loop's connection, so
/// its command never crosses threads; other callers are spread round-robin. Nothing ever blocks a
/// thread waiting for Redis.
///
/// Connections are made lazily, re-made after any error, and backed off (100 ms doubling to 2 s,
/// `ConnectionStateMachine`) while the server cannot be reached; during a back-off commands go to
/// another open connection if there is one, else fail at once with `.unavailable`.
///
/// The standalone client is one of these; the Sentinel client swaps one in per primary it finds.
public final class RedisNodeClient: Sendable {
    /// Where the server is.
    public let address: RedisAddress
    private let settings: RedisConnection.Settings
    private let lanes: [Lane]
    private let laneByLoop: [ObjectIdentifier: Int]
    private let nextLane = Atomic<Int>(0)
    private let counters: RedisCounters
    private let logger: Logger
    /// Told about every connect failure, lost connection, command refused while backing off, and
    /// role-change reply (a failover is under way): the Sentinel and Cluster clients look the
    /// topology up again.
    private let onTrouble: @Sendable (RedisError) -> Void
    /// Cluster: takes a script whose reply was `MOVED`, `ASK`, `TRYAGAIN` or `CLUSTERDOWN` (it did
    /// not run), to send it on or fail it. Nil: those replies are errors like any other.
    private let onRedirect: (@Sendable (RedisError, RedirectedScript) -> Void)?

    init(
        address: RedisAddress,
        settings: RedisConnection.Settings,
        connectionCount: Int,
        eventLoopGroup: any EventLoopGroup,
        counters: RedisCounters,
        logger: Logger,
        onTrouble: @escaping @Sendable (RedisError) -> Void = { _ in },
        onRedirect: (@Sendable (RedisError, RedirectedScript) -> Void)? = nil
    ) {
        self.address = address
        self.onRedirect = onRedirect
        self.settings = settings
        self.counters = counters
        self.logger = logger
        self.onTrouble = onTrouble
        var loops: [any EventLoop] = []
        var iterator = eventLoopGroup.makeIterator()
        while let loop = iterator.next() { loops.append(loop) }
        let count = max(1, connectionCount)
        self.lanes = (0..<count).map { Lane(eventLoop: loops[$0 % loops.count]) }
        var byLoop: [ObjectIdentifier: Int] = [:]
        for (index, lane) in lanes.enumerated() where byLoop[ObjectIdentifier(lane.eventLoop)] == nil {
            byLoop[ObjectIdentifier(lane.eventLoop)] = index
        }
        self.laneByLoop = byLoop
    }

    /// Runs a Lua script by `EVALSHA`, falling back to `EVAL` (which also caches it) on `NOSCRIPT`;
    /// with `wait`, a `WAIT` follows on the same connection in the same write (one round trip) and
    /// the reply counts only once enough replicas confirmed it. `completion` runs on `eventLoop`
    /// with the reply or a `RedisError` (an error reply is a failure). With a connection already
    /// open on the caller's loop nothing leaves the loop: no task, no thread hop. With `asking`,
    /// `ASKING` goes first (Cluster: a slot being migrated here); `redirects` counts how often the
    /// script was sent on already.
    func run(
        _ script: RedisScript,
        keys: [String],
        arguments: [String],
        wait: ReplicaWait?,
        asking: Bool = false,
        redirects: Int = 0,
        on eventLoop: (any EventLoop)?,
        _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void
    ) {
        let lane = pickLane()
        let eventLoop = eventLoop ?? lane.eventLoop
        var command: [String] = []
        command.reserveCapacity(3 + keys.count + arguments.count)
        command.append("EVALSHA")
        command.append(script.sha1)
        command.append(String(keys.count))
        command.append(contentsOf: keys)
        command.append(contentsOf: arguments)
        send(command, asking: asking, wait: wait, on: eventLoop, lane: lane) { [command] raw in
            let result = self.reply(raw)
            guard case .failure(let error) = result else { return completion(result) }
            if let onRedirect = self.onRedirect, error.isRedirect {
                let redirected = RedirectedScript(
                    from: self.address,
                    script: script,
                    keys: keys,
                    arguments: arguments,
                    wait: wait,
                    eventLoop: eventLoop,
                    redirects: redirects,
                    completion: completion
                )
                return onRedirect(error, redirected)
            }
            guard error.isNoScript else { return completion(result) }
            self.counters.scriptReloads.add(1, ordering: .relaxed)
            self.logger.debug("script not cached in Redis; sending it with EVAL", metadata: ["script": "\(script.name)"])
            var eval = command
            eval[0] = "EVAL"
            eval[1] = script.source
            self.send(eval, asking: asking, wait: wait, on: eventLoop, lane: lane) { completion(self.reply($0)) }
        }
    }

    /// Sends one command and returns its reply. An error reply is thrown as `.server`.
    public func send(_ arguments: [String]) async throws(RedisError) -> RESPValue {
        try await send(arguments, asking: false)
    }

    /// `send`, with `ASKING` first when `asking` (Cluster: a slot being migrated here).
    func send(_ arguments: [String], asking: Bool) async throws(RedisError) -> RESPValue {
        let lane = pickLane()
        return try await awaiting { completion in
            send(arguments, asking: asking, wait: nil, on: lane.eventLoop, lane: lane) { completion(self.reply($0)) }
        }
    }

    /// The reply as callers see it: an error reply is a `RedisError` too; a role-change reply
    /// (`READONLY`, `LOADING`, `MASTERDOWN`) is also reported to the owner. (`send` hands its
    /// caller the raw reply, so that the hot path needs one closure, not one wrapping another.)
    private func reply(_ result: Result<RESPValue, RedisError>) -> Result<RESPValue, RedisError> {
        guard case .success(.error(let message)) = result else { return result }
        let error = RedisError(.server, message)
        if error.isRoleChange {
            counters.countError(at: address)
            onTrouble(error)
        }
        return .failure(error)
    }

    /// Sends the command (and `WAIT` after it) through `lane`'s connection, or another open one
    /// while it backs off; connecting is the rare path, in a task. `completion` gets the raw reply
    /// (an error reply is a success here; see `reply`).
    private func send(
        _ arguments: [String],
        asking: Bool,
        wait: ReplicaWait?,
        on loop: any EventLoop,
        lane: Lane,
        _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void
    ) {
        var buffer = ByteBuffer()
        do {
            if asking { try RESPEncoder.encode(["ASKING"], into: &buffer) }
            try RESPEncoder.encode(arguments, into: &buffer)
            if let wait { try RESPEncoder.encode(["WAIT", String(wait.replicas), String(wait.milliseconds)], into: &buffer) }
        } catch {
            loop.execute { completion(.failure(error)) }
            return
        }
        if let open = openConnection(preferring: lane) {
            write(buffer, asking: asking, wait: wait, to: open, on: loop, completion)
        } else {
            loop.makeFutureWithTask { try await self.connection(for: lane) }.whenComplete { [buffer] result in
                switch result {
                case .success(let connection): self.write(buffer, asking: asking, wait: wait, to: connection, on: loop, completion)
                case .failure(let error): completion(.failure(error as? RedisError ?? RedisError(.connectionClosed, "\(error)")))
                }
            }
        }
    }

    private func write(
        _ buffer: ByteBuffer,
        asking: Bool,
        wait: ReplicaWait?,
        to connection: RedisConnection,
        on loop: any EventLoop,
        _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void
    ) {
        counters.commandsSent.add(1, ordering: .relaxed)
        guard asking || wait != nil else {
            connection.send(buffer, replies: 1, replyOn: loop, completion)
            return
        }
        // Several replies in order on `loop`: ASKING's (ignored: the command's own reply says
        // whether it ran), the command's, then WAIT's (the number of replicas that confirmed every
        // write made on this connection so far, the command's included). A failed connection calls
        // once, with its failure.
        let commandIndex = asking ? 1 : 0
        let replies = commandIndex + 1 + (wait == nil ? 0 : 1)
        let collected = NIOLoopBoundBox<(count: Int, command: Result<RESPValue, RedisError>?)>.makeBoxSendingValue(
            (0, nil),
            eventLoop: loop
        )
        connection.send(buffer, replies: replies, replyOn: loop) { result in
            let index = collected.value.count
            collected.value.count += 1
            if case .failure = result, index <= commandIndex { return completion(result) }
            if index < commandIndex { return }
            if index == commandIndex {
                // Without WAIT this is the answer; with it, the answer once WAIT's reply is in.
                if wait == nil { return completion(result) }
                collected.value.command = result
                return
            }
            guard let wait, let commandReply = collected.value.command else { return }
            guard case .success(let value) = commandReply, !value.isError else { return completion(commandReply) }
            switch result {
            case .success(.integer(let confirmed)) where confirmed >= wait.replicas:
                completion(commandReply)
            case .success(.integer(let confirmed)):
                self.counters.replicationTimeouts.add(1, ordering: .relaxed)
                completion(.failure(RedisError(.notReplicated, "\(confirmed) of \(wait.replicas) replicas confirmed within \(wait.milliseconds) ms")))
            case .success(let other):
                completion(.failure(RedisError(.notReplicated, "WAIT answered \(other)")))
            case .failure(let error):
                completion(.failure(error))
            }
        }
    }

    /// Closes every connection; later commands fail with `.shutdown`.
    public func shutdown() {
        for lane in lanes {
            lane.state.withLock { $0.shutdown() }?.close()
        }
    }

    /// The lane's connection; while that lane is backing off after a failure, another lane's open
    /// connection (the server may be back while this one waits out its delay). Nil: connect (or
    /// fail) through the lane.
    private func openConnection(preferring lane: Lane) -> RedisConnection? {
        let now = NIODeadline.now()
        let (connection, backingOff) = lane.state.withLock { ($0.connection, $0.isBackingOff(at: now)) }
        if let connection { return connection }
        guard backingOff else { return nil }
        for other in lanes where other !== lane {
            if let found = other.state.withLock({ $0.connection }) { return found }
        }
        return nil
    }

    private func pickLane() -> Lane {
        if lanes.count == 1 { return lanes[0] }
        if let loop = MultiThreadedEventLoopGroup.currentEventLoop, let index = laneByLoop[ObjectIdentifier(loop)] {
            return lanes[index]
        }
        let index = nextLane.wrappingAdd(1, ordering: .relaxed).oldValue
        return lanes[index % lanes.count]
    }

    private func connection(for lane: Lane) async throws(RedisError) -> RedisConnection {
        var promise: EventLoopPromise<RedisConnection>?
        let action = lane.state.withLock { state in
            state.needConnection(at: .now()) {
                let made = lane.eventLoop.makePromise(of: RedisConnection.self)
                promise = made
                return made.futureResult
            }
        }
        switch action {
        case .use(let connection):
            return connection
        case .fail(let error):
            // Backing off after a failed connect: no attempt now, but the owner hears of every
            // command refused meanwhile, so a Cluster or Sentinel client keeps looking for the
            // primary that replaces this one (its lookups spaced 100 ms apart) instead of waiting
            // for the next connect attempt (up to 2 s) or its in-doubt second.
            if error.kind != .shutdown { onTrouble(error) }
            throw error
        case .wait(let future):
            do {
                return try await future.get()
            } catch {
                throw error as? RedisError ?? RedisError(.connectionFailed, "\(error)")
            }
        case .connect:
            guard let promise else { preconditionFailure("a connect without its promise") }
            do throws(RedisError) {
                let connection = try await RedisConnection.connect(to: address, settings: settings, on: lane.eventLoop)
                counters.connectionsOpened.add(1, ordering: .relaxed)
                guard lane.state.withLock({ $0.connected(connection) }) else {
                    connection.close()
                    throw RedisError(.shutdown, "client shut down")
                }
                connection.channel.closeFuture.whenComplete { _ in
                    if lane.state.withLock({ $0.closed(connection, at: .now()) }) {
                        self.counters.countError(at: self.address)
                        self.onTrouble(RedisError(.connectionClosed, "connection to \(self.address) closed"))
                    }
                }
                promise.succeed(connection)
                return connection
            } catch {
                let delay = lane.state.withLock { $0.connectFailed(at: .now()) }
                if delay == ConnectionStateMachine<RedisConnection, EventLoopFuture<RedisConnection>>.firstDelay {
                    logger.warning("Redis connection failed", metadata: ["address": "\(address)", "error": "\(error.message)"])
                }
                counters.countError(at: address)
                onTrouble(error)
                promise.fail(error)
                throw error
            }
        }
    }

    /// One pipelined connection, bound to an event loop.
    private final class Lane: Sendable {
        let eventLoop: any EventLoop
        let state = Mutex(ConnectionStateMachine<RedisConnection, EventLoopFuture<RedisConnection>>())
        init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }
    }
}

/// `WAIT <replicas> <milliseconds>` after a write: how many replicas must confirm it, and for how long
/// to wait for them.
public struct ReplicaWait: Sendable, Equatable {
    /// Replicas that must confirm.
    public var replicas: Int64
    /// The longest wait, in milliseconds (never 0: that would wait forever).
    public var milliseconds: Int64

    /// Creates a wait.
    public init(replicas: Int, milliseconds: Int) {
        self.replicas = Int64(replicas)
        self.milliseconds = Int64(max(1, milliseconds))
    }
}

/// A script that came back with a redirect (`MOVED`, `ASK`) or a cluster-state error (`TRYAGAIN`,
/// `CLUSTERDOWN`) and did not run: what the Cluster client needs to send it on, or fail it.
struct RedirectedScript: Sendable {
    /// The node that refused it (a redirect naming no host means this one's).
    var from: RedisAddress
    var script: RedisScript
    var keys: [String]
    var arguments: [String]
    var wait: ReplicaWait?
    var eventLoop: any EventLoop
    /// How often it was sent on already.
    var redirects: Int
    var completion: @Sendable (Result<RESPValue, RedisError>) -> Void
}
