import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import TokenGate

/// The hot routes, each defined once: `GET /api/me` and forward-auth's `GET /auth/verify` (`docs/openapi.yaml`).
///
/// Both need a live token and nothing else. `FastPathHandler` answers them in the channel
/// pipeline when the router would do nothing more (`answeredInPipeline`); otherwise the router
/// does (`register`), behind `AuthMiddleware`. Either way the answer is `answer(to:expiresIn:)`, and
/// it is counted under the route's path.
enum HotRoute: String, CaseIterable, Sendable {
    case me = "/api/me"
    case verify = "/auth/verify"

    /// The route's path (its label in the metrics).
    var path: String { rawValue }

    /// The route of an origin-form request target, its query ignored (an absolute-form target goes
    /// to the router).
    init?(target: String) {
        let path = target.utf8.firstIndex(of: UInt8(ascii: "?")).map { target[..<$0] } ?? Substring(target)
        self.init(rawValue: String(path))
    }

    /// Whether the fast path answers the hot routes: only where the router would add nothing,
    /// i.e. no successor token to issue (rotation off) and no cookie or CSRF check (cookie mode off).
    static func answeredInPipeline(_ configuration: Configuration) -> Bool {
        configuration.rotation == .off && !configuration.cookieMode
    }

    /// The route's 200 for a verified token, as an NIO HTTP/1 head and body: built without
    /// `HTTPFields` and their conversion (those were 7 % of a verify's CPU), with `Content-Length`
    /// last, as `HTTP1ToHTTPServerCodec` would hand the same answer to NIO's encoder.
    /// `expiresIn`: the token's seconds left (`AuthService.secondsLeft`), for `/api/me`.
    func answer(to identity: VerifiedToken, expiresIn: @autoclosure () -> Int64) -> (head: HTTPResponseHead, body: ByteBuffer) {
        switch self {
        case .verify:
            let fields = [
                (HTTPField.Name.xAuthUser.rawName, UserID.headerValue(identity.user)), (HTTPField.Name.xAuthSession.rawName, identity.sid),
                (HTTPField.Name.cacheControl.rawName, "no-store"), (HTTPField.Name.contentLength.rawName, "0"),
            ]
            return (HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders(fields)), ByteBuffer())
        case .me:
            var json = JSONWriter()
            json.object {
                $0.field("user", identity.user)
                $0.field("session_id", identity.sid)
                $0.field("expires_in", expiresIn())
            }
            let body = ByteBuffer(bytes: json.bytes)
            let fields = [
                (HTTPField.Name.contentType.rawName, "application/json"), (HTTPField.Name.cacheControl.rawName, "no-store"),
                (HTTPField.Name.contentLength.rawName, String(body.readableBytes)),
            ]
            return (HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders(fields)), body)
        }
    }

    /// The same answer for the router (Hummingbird sets `Content-Length` itself).
    func response(to identity: VerifiedToken, expiresIn: @autoclosure () -> Int64) -> Response {
        let (head, body) = answer(to: identity, expiresIn: expiresIn())
        var fields = HTTPFields()
        for (name, value) in head.headers where name != HTTPField.Name.contentLength.rawName {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        return Response(status: .ok, headers: fields, body: body.readableBytes > 0 ? .init(byteBuffer: body) : .init())
    }

    /// The routes on the router, for the requests the fast path leaves to it.
    static func register(on router: Router<TokenGateRequestContext>, auth: AuthService) {
        for route in allCases {
            router.get(RouterPath(route.path)) { _, context in
                let identity = try context.requireIdentity()
                return route.response(to: identity, expiresIn: auth.secondsLeft(identity))
            }
        }
    }
}
