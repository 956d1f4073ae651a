internal import CHiredis
import NIOCore

// The only file that touches hiredis. hiredis is used purely as the RESP codec:
// `redisFormatSdsCommandArgv` writes commands, a `redisReader` parses replies; the
// sockets belong to SwiftNIO.

/// Encodes commands as RESP with hiredis's binary-safe argv formatter (the sds form: hiredis's own
/// number formatting, where `redisFormatCommandArgv` goes through libc's `sprintf` for every
/// argument, 1.3 % of a verify's CPU in the third round's profile).
enum RESPEncoder {
    /// Appends the RESP encoding of `arguments` to `buffer`.
    static func encode(_ arguments: [String], into buffer: inout ByteBuffer) throws(RedisError) {
        precondition(!arguments.isEmpty, "a Redis command needs at least its name")
        // hiredis takes an argv: one contiguous copy of all argument bytes (plus a trailing NUL so
        // it is never empty), their lengths and pointers, in scratch space rather than arrays.
        let count = arguments.count
        let total = arguments.reduce(1) { $0 + $1.utf8.count }
        let written = withUnsafeTemporaryAllocation(of: CChar.self, capacity: total) { storage in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { lengths in
                withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { pointers in
                    // swift-format-ignore: NeverForceUnwrap
                    let base = storage.baseAddress!
                    var offset = 0
                    for (index, argument) in arguments.enumerated() {
                        let start = base + offset
                        let length =
                            argument.utf8.withContiguousStorageIfAvailable { bytes in
                                if let source = bytes.baseAddress {
                                    UnsafeMutableRawPointer(start).copyMemory(from: source, byteCount: bytes.count)
                                }
                                return bytes.count
                            }
                            ?? argument.utf8.reduce(into: 0) { written, byte in
                                start[written] = CChar(bitPattern: byte)
                                written += 1
                            }
                        lengths[index] = length
                        pointers[index] = UnsafePointer(start)
                        offset += length
                    }
                    base[offset] = 0
                    var target: sds? = nil
                    let written = redisFormatSdsCommandArgv(&target, Int32(count), pointers.baseAddress, lengths.baseAddress)
                    guard written >= 0, let target else { return -1 }
                    defer { redisFreeSdsCommand(target) }
                    buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(written)))
                    return Int(written)
                }
            }
        }
        if written < 0 { throw RedisError(.protocolError, "hiredis could not format the command") }
    }
}

/// Incremental RESP parser over a hiredis `redisReader`.
///
/// Not thread-safe: each connection owns one and uses it on its event loop only.
final class RESPDecoder {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        // redisReaderCreate only fails when malloc does.
        guard let reader = redisReaderCreate() else { fatalError("out of memory creating a hiredis reader") }
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Hands received bytes to the reader.
    func feed(_ buffer: ByteBuffer) throws(RedisError) {
        let status = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw protocolError() }
    }

    /// The next complete reply, or nil when more bytes are needed.
    func next() throws(RedisError) -> RESPValue? {
        var raw: UnsafeMutableRawPointer? = nil
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw protocolError() }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    private func protocolError() -> RedisError {
        let message = withUnsafeBytes(of: &reader.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        return RedisError(.protocolError, message.isEmpty ? "malformed reply" : message)
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let value = reply.pointee
        func text() -> [UInt8] {
            guard let str = value.str, value.len > 0 else { return [] }
            return Array(UnsafeRawBufferPointer(start: str, count: value.len))
        }
        switch value.type {
        case REDIS_REPLY_STRING:
            return .bulk(text())
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: text(), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: text(), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(value.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(value.elements)
            for index in 0..<value.elements {
                if let element = value.element[index] { elements.append(convert(element)) } else { elements.append(.null) }
            }
            return .array(elements)
        default:
            return .null
        }
    }
}
