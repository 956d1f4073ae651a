import HTTPTypes
import Hummingbird
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import TokenGate

@testable import TokenGateHTTP

/// The fast path writes its answers as NIO HTTP/1 heads it builds itself (`HTTPAnswer`), through
/// NIO's `HTTPResponseEncoder`: the bytes must be the ones the encoder writes for the routes' own
/// fields, as `HTTP1ToHTTPServerCodec` hands them over.
@Suite struct HTTPAnswerTests {
    /// What NIO's encoder writes for a head and a body.
    private func encoded(_ head: HTTPResponseHead, _ body: ByteBuffer) throws -> String {
        let channel = EmbeddedChannel(handler: HTTPResponseEncoder())
        try channel.writeOutbound(HTTPServerResponsePart.head(head))
        if body.readableBytes > 0 { try channel.writeOutbound(HTTPServerResponsePart.body(.byteBuffer(body))) }
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
        return String(decoding: bytes, as: UTF8.self)
    }

    /// What the encoder writes for a route's answer, converted as `HTTP1ToHTTPServerCodec` does.
    private func routeBytes(_ parts: TokenGateError.ResponseParts) throws -> String {
        var headers = HTTPHeaders()
        for field in parts.headers { headers.add(name: field.name.rawName, value: field.value) }
        headers.add(name: "Content-Length", value: String(parts.body.readableBytes))
        let status = HTTPResponseStatus(statusCode: parts.status.code, reasonPhrase: parts.status.reasonPhrase)
        return try encoded(HTTPResponseHead(version: .http1_1, status: status, headers: headers), parts.body)
    }

    @Test func refusalsAreTheRoutesBytes() throws {
        var closing = TokenGateError.tokenRevoked.responseParts
        closing.headers[.connection] = "close"
        let answers: [TokenGateError.ResponseParts] = [
            TokenGateError.missingToken.responseParts,
            TokenGateError.tokenExpired.responseParts,
            TokenGateError(.storeUnavailable, "Redis does not answer").responseParts,
            TokenGateError(.headersTooLarge, "too large").responseParts,
            closing,
        ]
        for parts in answers {
            let bytes = try encoded(HTTPAnswer.head(parts), parts.body)
            #expect(bytes == (try routeBytes(parts)))
            #expect(bytes.hasPrefix("HTTP/1.1 \(parts.status.code) "))
        }
    }

    /// The hot routes' 200s are built as NIO heads for the fast path: the router's answer, made
    /// from the same head, is the same bytes once Hummingbird's codec has converted it.
    @Test func hotRouteAnswersAreTheRoutersBytes() throws {
        for identity in [
            VerifiedToken(user: "alice", sid: "q_3tc4eui83klldTGq2ByQ", jti: "Z4M6Ujo6WSB_RXLF4BAcvQ", issuedAt: 1, expiresAt: 31),
            VerifiedToken(user: "b.o-b_9@example.org", sid: String(repeating: "s", count: 64), jti: "j", issuedAt: 0, expiresAt: 900),
        ] {
            for route in HotRoute.allCases {
                let (head, body) = route.answer(to: identity, expiresIn: 29)
                let response = route.response(to: identity, expiresIn: 29)
                #expect(response.body.contentLength == body.readableBytes)
                let fastPath = try encoded(head, body)
                // `Response` sets Content-Length itself, last, as `routeBytes` does.
                var fields = response.headers
                #expect(fields.last?.name == .contentLength)
                fields[.contentLength] = nil
                let routed = try routeBytes((response.status, fields, body))
                #expect(fastPath == routed)
                #expect(fastPath.hasPrefix("HTTP/1.1 200 OK\r\n"))
            }
            let meAnswer = HotRoute.me.answer(to: identity, expiresIn: 29)
            let me = try encoded(meAnswer.head, meAnswer.body)
            #expect(me.hasSuffix(#"{"user":"\#(identity.user)","session_id":"\#(identity.sid)","expires_in":29}"#))
            let verify = try encoded(HotRoute.verify.answer(to: identity, expiresIn: 29).head, ByteBuffer())
            #expect(verify.contains("X-Auth-User: \(identity.user)\r\nX-Auth-Session: \(identity.sid)\r\n"))
        }
    }
}
