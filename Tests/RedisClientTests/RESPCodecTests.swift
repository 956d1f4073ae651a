import NIOCore
import Testing

@testable import RedisClient

@Suite("RESP through hiredis")
struct RESPCodecTests {
    @Test("commands are encoded as binary-safe RESP arrays")
    func encodesArgv() throws {
        var buffer = ByteBuffer()
        try RESPEncoder.encode(["SET", "a\r\nb", ""], into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$0\r\n\r\n")
    }

    @Test("a key with CRLF and RESP markers stays one argument")
    func injectionIsJustBytes() throws {
        var buffer = ByteBuffer()
        try RESPEncoder.encode(["GET", "x\r\n*1\r\n$8\r\nFLUSHALL\r\n"], into: &buffer)
        #expect(String(buffer: buffer).hasPrefix("*2\r\n$3\r\nGET\r\n$21\r\n"))
    }

    @Test("every reply type is decoded into Swift values")
    func decodesReplyTypes() throws {
        let decoder = RESPDecoder()
        try decoder.feed(ByteBuffer(string: "+OK\r\n-ERR bad\r\n:42\r\n$3\r\nfoo\r\n$-1\r\n*2\r\n:1\r\n*1\r\n$0\r\n\r\n*-1\r\n"))
        #expect(try decoder.next() == .status("OK"))
        #expect(try decoder.next() == .error("ERR bad"))
        #expect(try decoder.next() == .integer(42))
        #expect(try decoder.next() == .bulk(Array("foo".utf8)))
        #expect(try decoder.next() == .null)
        #expect(try decoder.next() == .array([.integer(1), .array([.bulk([])])]))
        #expect(try decoder.next() == .null)
        #expect(try decoder.next() == nil)
    }

    @Test("a reply split across reads is returned once it is complete")
    func partialReplies() throws {
        let decoder = RESPDecoder()
        try decoder.feed(ByteBuffer(string: "$5\r\nhel"))
        #expect(try decoder.next() == nil)
        try decoder.feed(ByteBuffer(string: "lo\r\n:7"))
        #expect(try decoder.next() == .bulk(Array("hello".utf8)))
        #expect(try decoder.next() == nil)
        try decoder.feed(ByteBuffer(string: "\r\n"))
        #expect(try decoder.next() == .integer(7))
    }

    @Test("bytes that are not RESP are a protocol error")
    func garbage() throws {
        let decoder = RESPDecoder()
        try decoder.feed(ByteBuffer(string: "?what\r\n"))
        #expect(throws: RedisError.self) { try decoder.next() }
    }

    @Test("script SHA1 matches what Redis computes for SCRIPT LOAD")
    func scriptSHA() {
        #expect(RedisScript(name: "one", source: "return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
    }
}
