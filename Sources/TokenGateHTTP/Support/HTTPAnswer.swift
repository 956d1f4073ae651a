import HTTPTypes
import NIOCore
import TokenGate

/// The bytes of a whole HTTP/1.1 answer with a known length, as NIO's `HTTPResponseEncoder` writes
/// the same head and body: the status line, the fields in their order, `Content-Length` last, the
/// body. The fast path writes them straight to the socket side of the encoder in one buffer: one
/// pipeline pass and no `HTTPHeaders` to build (the encoder and the header conversion were 7 % of a
/// verify's CPU in the third round's profile). A test compares the bytes with NIO's encoder.
enum HTTPAnswer {
    /// Any answer, from its parts.
    static func encode(_ parts: TokenGateError.ResponseParts, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(parts.status.code))
        buffer.writeStaticString(" ")
        buffer.writeString(parts.status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        for field in parts.headers {
            buffer.writeString(field.name.rawName)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("Content-Length: ")
        buffer.writeString(String(parts.body.readableBytes))
        buffer.writeStaticString("\r\n\r\n")
        buffer.writeImmutableBuffer(parts.body)
    }

    /// `GET /auth/verify`'s 200: the bytes `encode` writes for `AuthRoutes.verifiedHeaders`, from
    /// pre-built parts (building the fields and writing them one by one was 8 % of a verify's
    /// instructions in bench/profile). A test holds the two to the same bytes.
    static func verified(_ identity: VerifiedToken, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("HTTP/1.1 200 OK\r\nX-Auth-User: ")
        buffer.writeString(identity.user)
        buffer.writeStaticString("\r\nX-Auth-Session: ")
        buffer.writeString(identity.sid)
        buffer.writeStaticString("\r\nCache-Control: no-store\r\nContent-Length: 0\r\n\r\n")
    }

    /// `GET /api/me`'s 200 with its body (`ServiceRoutes.me`): the bytes `encode` writes for
    /// `ServiceRoutes.meHeaders`, from pre-built parts.
    static func me(body: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: ")
        buffer.writeString(String(body.readableBytes))
        buffer.writeStaticString("\r\n\r\n")
        buffer.writeImmutableBuffer(body)
    }
}
