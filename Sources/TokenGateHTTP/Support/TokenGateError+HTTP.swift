public import HTTPTypes
public import Hummingbird
import NIOCore
import NIOHTTP1
public import TokenGate

// The one place where the contract's error codes meet HTTP (`docs/openapi.yaml`, schema `ErrorCode`).
extension TokenGateError: HTTPResponseError {
    /// The contract's status for this error's code.
    public var status: HTTPResponse.Status {
        switch code {
        case .invalidRequest: .badRequest
        case .payloadTooLarge: .contentTooLarge
        case .headersTooLarge: .requestHeaderFieldsTooLarge
        case .invalidCredentials, .missingToken, .invalidToken, .tokenExpired, .tokenRevoked, .sessionExpired: .unauthorized
        case .csrfFailed: .forbidden
        case .notFound: .notFound
        case .rateLimited: .tooManyRequests
        case .storeUnavailable: .serviceUnavailable
        }
    }

    /// An answer's status, headers and body.
    typealias ResponseParts = (status: HTTPResponse.Status, headers: HTTPFields, body: ByteBuffer)

    /// `{"error": code, "message": text}` with `WWW-Authenticate` on 401 (RFC 6750), and
    /// `Retry-After` on 429 (when the limit frees up) and on 503 (1 s: Redis is failing over or
    /// unreachable; the service recovers by itself).
    var responseParts: ResponseParts {
        var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
        switch code {
        case .missingToken, .invalidCredentials:
            headers[.wwwAuthenticate] = #"Bearer realm="tokengate""#
        case .invalidToken, .tokenExpired, .tokenRevoked, .sessionExpired:
            headers[.wwwAuthenticate] = #"Bearer realm="tokengate", error="invalid_token""#
        default:
            break
        }
        if let retryAfter = retryAfter ?? (code == .storeUnavailable ? 1 : nil) { headers[.retryAfter] = String(retryAfter) }
        var body = JSONWriter()
        body.object {
            $0.field("error", code.rawValue)
            $0.field("message", message)
        }
        return (status, headers, ByteBuffer(bytes: body.bytes))
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let parts = responseParts
        return Response(status: parts.status, headers: parts.headers, body: .init(byteBuffer: parts.body))
    }

    /// Maps any error thrown by a handler or by Hummingbird to the contract's error.
    static func from(_ error: any Error) -> TokenGateError? {
        switch error {
        case let error as TokenGateError:
            return error
        case is HTTPParserError:
            // The client sent a broken request or dropped it half-way (e.g. a body cut short).
            return TokenGateError(.invalidRequest, "the request is malformed or incomplete")
        case is NIOTooManyBytesError:
            return TokenGateError(.payloadTooLarge, "the request body is larger than allowed")
        case let error as HTTPError where error.status == .notFound || error.status == .methodNotAllowed:
            return .notFound
        case let error as HTTPError where error.status == .contentTooLarge:
            return TokenGateError(.payloadTooLarge, "the request body is larger than allowed")
        case let error as HTTPError where error.status.kind == .clientError:
            return TokenGateError(.invalidRequest, "the request is malformed")
        default:
            return nil
        }
    }
}
