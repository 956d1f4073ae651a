import HTTPTypes
import NIOCore
import NIOHTTP1
import TokenGate

/// The fast path's refusals as NIO HTTP/1 response heads, for NIO's `HTTPResponseEncoder`: the
/// same status and fields, in the same order, as `HTTP1ToHTTPServerCodec` hands it for the routes'
/// answers, with `Content-Length` last. (The 200s are `HotRoute.answer(to:expiresIn:)`.) The answers
/// must pass through the encoder, not around it: it pairs each answer with its request's method
/// (an answer to HEAD has no body). A test holds the bytes the encoder writes to those of the
/// routes' fields.
enum HTTPAnswer {
    /// Any answer, from its parts.
    static func head(_ parts: TokenGateError.ResponseParts) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(parts.headers.count + 1)
        for field in parts.headers { headers.add(name: field.name.rawName, value: field.value) }
        headers.add(name: HTTPField.Name.contentLength.rawName, value: String(parts.body.readableBytes))
        return HTTPResponseHead(
            version: .http1_1,
            status: HTTPResponseStatus(statusCode: parts.status.code, reasonPhrase: parts.status.reasonPhrase),
            headers: headers
        )
    }
}
