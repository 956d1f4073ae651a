import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import RedisClient

@Suite("pipelining on one connection")
struct RedisChannelHandlerTests {
    private func makeChannel(timeout: TimeAmount = .seconds(1)) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: RedisChannelHandler(timeout: timeout))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        return channel
    }

    /// A command's reply as a promise's result.
    private func complete(_ promise: EventLoopPromise<RESPValue>) -> @Sendable (Result<RESPValue, RedisError>) -> Void {
        { promise.completeWith($0.mapError { $0 as any Error }) }
    }

    private func send(_ channel: EmbeddedChannel, _ arguments: [String]) throws -> EventLoopFuture<RESPValue> {
        var bytes = ByteBuffer()
        try RESPEncoder.encode(arguments, into: &bytes)
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        channel.write(OutgoingCommand(bytes: bytes, reply: complete(promise), deadline: channel.eventLoop.now + .seconds(1)), promise: nil)
        return promise.futureResult
    }

    @Test("replies complete the commands in the order they were written")
    func inOrder() throws {
        let channel = try makeChannel()
        let first = try send(channel, ["GET", "a"])
        let second = try send(channel, ["GET", "b"])
        let third = try send(channel, ["INCR", "c"])
        channel.flush()
        let written = try channel.readOutbound(as: ByteBuffer.self)
        #expect(written.map { String(buffer: $0) } == "*2\r\n$3\r\nGET\r\n$1\r\na\r\n")
        // All three replies arrive in one read.
        try channel.writeInbound(ByteBuffer(string: "$1\r\nA\r\n$-1\r\n:3\r\n"))
        #expect(try first.wait() == .bulk(Array("A".utf8)))
        #expect(try second.wait() == .null)
        #expect(try third.wait() == .integer(3))
    }

    @Test("no reply within the timeout fails every waiting command and closes the connection")
    func timeout() throws {
        let channel = try makeChannel(timeout: .milliseconds(100))
        let loop = channel.embeddedEventLoop
        var bytes = ByteBuffer()
        try RESPEncoder.encode(["PING"], into: &bytes)
        let promise = loop.makePromise(of: RESPValue.self)
        channel.writeAndFlush(OutgoingCommand(bytes: bytes, reply: complete(promise), deadline: loop.now + .milliseconds(100)), promise: nil)
        loop.advanceTime(by: .milliseconds(50))
        #expect(channel.isActive)
        loop.advanceTime(by: .milliseconds(100))
        #expect(throws: RedisError.self) { try promise.futureResult.wait() }
        #expect(!channel.isActive)
    }

    @Test("a reset connection fails every waiting command; none waits forever")
    func reset() throws {
        let channel = try makeChannel()
        let first = try send(channel, ["GET", "a"])
        let second = try send(channel, ["GET", "b"])
        channel.flush()
        try channel.writeInbound(ByteBuffer(string: "$1\r\nA\r\n"))
        channel.pipeline.fireChannelInactive()
        #expect(try first.wait() == .bulk(Array("A".utf8)))
        #expect {
            try second.wait()
        } throws: { ($0 as? RedisError)?.kind == .connectionClosed }
    }

    @Test("a reply nobody asked for is a protocol error, not someone else's answer")
    func unexpectedReply() throws {
        let channel = try makeChannel()
        _ = try? channel.writeInbound(ByteBuffer(string: "+OK\r\n"))
        #expect(!channel.isActive)
    }

    @Test("a command with WAIT after it gets both replies in order, then the next command its own")
    func twoReplies() throws {
        let channel = try makeChannel()
        let replies = Replies()
        var bytes = ByteBuffer()
        try RESPEncoder.encode(["SET", "k", "v"], into: &bytes)
        try RESPEncoder.encode(["WAIT", "1", "100"], into: &bytes)
        let command = OutgoingCommand(
            bytes: bytes,
            replies: 2,
            reply: { result in
                if case .success(let value) = result { replies.append(value) }
            },
            deadline: channel.eventLoop.now + .seconds(1)
        )
        channel.write(command, promise: nil)
        let next = try send(channel, ["GET", "k"])
        channel.flush()
        try channel.writeInbound(ByteBuffer(string: "+OK\r\n:1\r\n$1\r\nv\r\n"))
        #expect(replies.all == [.status("OK"), .integer(1)])
        #expect(try next.wait() == .bulk(Array("v".utf8)))
    }

    @Test("a subscriber connection hands messages nobody waits for to its push handler")
    func push() throws {
        let pushed = Replies()
        let channel = EmbeddedChannel(
            handler: RedisChannelHandler(timeout: .seconds(1), onPush: { message in pushed.append(message) })
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 26379)).wait()
        let subscribed = try send(channel, ["SUBSCRIBE", "+switch-master"])
        channel.flush()
        try channel.writeInbound(ByteBuffer(string: "*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n"))
        #expect(try subscribed.wait().array?.first?.string == "subscribe")
        let message = "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$37\r\ntokengate 10.0.0.1 6379 10.0.0.2 6380\r\n"
        try channel.writeInbound(ByteBuffer(string: message))
        #expect(pushed.all.count == 1)
        #expect(SentinelRedisClient.switchedPrimary(pushed.all[0]) == "tokengate")
        #expect(channel.isActive)
    }
}

/// Replies collected by a callback.
private final class Replies: Sendable {
    private let values = Mutex<[RESPValue]>([])
    func append(_ value: RESPValue) { values.withLock { $0.append(value) } }
    var all: [RESPValue] { values.withLock { $0 } }
}
