import NIOCore
import NIOEmbedded
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
}
