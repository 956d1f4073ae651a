import HTTPTypes
import NIOCore
import NIOHTTP1
import TokenGate

/// The fast path's answers as NIO HTTP/1 response heads, for NIO's `HTTPResponseEncoder`: the same
/// status and fields, in the same order, as `HTTP1ToHTTPServerCodec` hands it for the routes'
/// answers, with `Content-Length` last, built without `HTTPFields` and their conversion (those were
/// 7 % of a verify's CPU). The answers must pass through the encoder, not around it: it pairs each
/// answer with its request's method (an answer to HEAD has no body). A test holds the bytes the
/// encoder writes to those of the routes' fields.
enum HTTPAnswer {
    /// Any answer, from its parts.
    static func head(_ parts: TokenGateError.ResponseParts) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(parts.headers.count + 1)
        for field in parts.headers { headers.add(name: field.name.rawName, value: field.value) }
        headers.add(name: "Content-Length", value: String(parts.body.readableBytes))
        return HTTPResponseHead(
            version: .http1_1,
            status: HTTPResponseStatus(statusCode: parts.status.code, reasonPhrase: parts.status.reasonPhrase),
            headers: headers
        )
    }

    /// `GET /auth/verify`'s 200 (`AuthRoutes.verifiedHeaders`), with no body.
    static func verified(_ identity: VerifiedToken) -> HTTPResponseHead {
        HTTPResponseHead(
            version: .http1_1,
            status: .ok,
            headers: HTTPHeaders([
                ("X-Auth-User", identity.user), ("X-Auth-Session", identity.sid), ("Cache-Control", "no-store"), ("Content-Length", "0"),
            ])
        )
    }

    /// `GET /api/me`'s 200 (`ServiceRoutes.meHeaders`) for a body of `length` bytes (`ServiceRoutes.me`).
    static func me(bodyLength length: Int) -> HTTPResponseHead {
        HTTPResponseHead(
            version: .http1_1,
            status: .ok,
            headers: HTTPHeaders([
                ("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Content-Length", String(length)),
            ])
        )
    }
}
