import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import TokenGate

@testable import TokenGateHTTP

/// The fast path writes its answers already encoded (`HTTPAnswer`), past NIO's encoder: the bytes
/// must be the ones NIO's `HTTPResponseEncoder` writes for the same head and body, as Hummingbird's
/// routes answer.
@Suite struct HTTPAnswerTests {
    /// What NIO's encoder writes for the parts, as `HTTP1ToHTTPServerCodec` hands them over.
    private func nioBytes(_ parts: TokenGateError.ResponseParts) throws -> [UInt8] {
        let channel = EmbeddedChannel(handler: HTTPResponseEncoder())
        var headers = HTTPHeaders()
        for field in parts.headers { headers.add(name: field.name.rawName, value: field.value) }
        headers.add(name: "Content-Length", value: String(parts.body.readableBytes))
        let status = HTTPResponseStatus(statusCode: parts.status.code, reasonPhrase: parts.status.reasonPhrase)
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
        if parts.body.readableBytes > 0 { try channel.writeOutbound(HTTPServerResponsePart.body(.byteBuffer(parts.body))) }
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        var bytes: [UInt8] = []
        while let part = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = part else {
                Issue.record("a file region")
                break
            }
            bytes += buffer.readableBytesView
        }
        _ = try channel.finish()
        return bytes
    }

    private func ours(_ parts: TokenGateError.ResponseParts) -> [UInt8] {
        var buffer = ByteBuffer()
        HTTPAnswer.encode(parts, into: &buffer)
        return Array(buffer.readableBytesView)
    }

    @Test func answersAreTheBytesNIOWrites() throws {
        let identity = VerifiedToken(user: "alice", sid: "q_3tc4eui83klldTGq2ByQ", jti: "Z4M6Ujo6WSB_RXLF4BAcvQ", issuedAt: 1, expiresAt: 31)
        var closing = TokenGateError.tokenRevoked.responseParts
        closing.headers[.connection] = "close"
        let answers: [TokenGateError.ResponseParts] = [
            (.ok, AuthRoutes.verifiedHeaders(identity), ByteBuffer()),
            (.ok, ServiceRoutes.meHeaders, ServiceRoutes.me(identity, expiresIn: 30)),
            TokenGateError.missingToken.responseParts,
            TokenGateError.tokenExpired.responseParts,
            TokenGateError(.storeUnavailable, "Redis does not answer").responseParts,
            TokenGateError(.headersTooLarge, "too large").responseParts,
            closing,
        ]
        for parts in answers {
            let expected = try nioBytes(parts)
            #expect(String(decoding: ours(parts), as: UTF8.self) == String(decoding: expected, as: UTF8.self))
            #expect(expected.starts(with: Array("HTTP/1.1 \(parts.status.code) ".utf8)))
        }
    }

    /// The fast path's two 200s are written from pre-built parts: the same bytes as from their
    /// routes' fields (and so as NIO writes them, above).
    @Test func prebuiltAnswersAreTheRoutesBytes() throws {
        for identity in [
            VerifiedToken(user: "alice", sid: "q_3tc4eui83klldTGq2ByQ", jti: "Z4M6Ujo6WSB_RXLF4BAcvQ", issuedAt: 1, expiresAt: 31),
            VerifiedToken(user: "b.o-b_9@example.org", sid: String(repeating: "s", count: 64), jti: "j", issuedAt: 0, expiresAt: 900),
        ] {
            var verified = ByteBuffer()
            HTTPAnswer.verified(identity, into: &verified)
            let verifiedParts: TokenGateError.ResponseParts = (.ok, AuthRoutes.verifiedHeaders(identity), ByteBuffer())
            #expect(String(buffer: verified) == String(decoding: try nioBytes(verifiedParts), as: UTF8.self))

            let body = ServiceRoutes.me(identity, expiresIn: 29)
            var me = ByteBuffer()
            HTTPAnswer.me(body: body, into: &me)
            #expect(String(buffer: me) == String(decoding: try nioBytes((.ok, ServiceRoutes.meHeaders, body)), as: UTF8.self))
        }
    }
}
