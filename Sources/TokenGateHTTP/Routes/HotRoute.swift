import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import TokenGate

/// The hot routes, each defined once: `GET /api/me` and forward-auth's check, `/auth/verify` (`docs/openapi.yaml`).
///
/// Both need a live token and nothing else. `FastPathHandler` answers them in the channel
/// pipeline when the router would do nothing more (`answeredInPipeline`); otherwise the router
/// does (`register`), behind `AuthMiddleware`. Either way the answer is `answer(to:expiresIn:)`, and
/// it is counted under the route's path.
///
/// The check is any method on `/auth/verify` or on any path below it: Envoy's `ext_authz` appends
/// the guarded request's path to the check's and keeps its method (`POST /echo` asks
/// `POST /auth/verify/echo`), and every other proxy asks `GET /auth/verify`. One byte comparison
/// tells them all apart from the other paths, so the plain `GET /auth/verify` costs nothing more.
enum HotRoute: String, CaseIterable, Sendable {
    case me = "/api/me"
    case verify = "/auth/verify"

    /// The route's path (its label in the metrics).
    var path: String { rawValue }

    /// The route of an origin-form request target (or path), its query ignored: `/api/me`, or
    /// `/auth/verify` and every path below it (an absolute-form target goes to the router).
    /// Whether the method fits is `accepts(isGET:)`. Compared as the target's own bytes, with no
    /// copy and nothing generic: it runs for every request head.
    init?(target: String) {
        var target = target
        guard let route = target.withUTF8({ Self.route(of: $0) }) else { return nil }
        self = route
    }

    private static func route(of bytes: UnsafeBufferPointer<UInt8>) -> HotRoute? {
        if starts(bytes, with: "/auth/verify", below: true) { return .verify }
        if starts(bytes, with: "/api/me", below: false) { return .me }
        return nil
    }

    /// Whether `bytes` is `path`, followed by nothing, a query, or (`below`) a path below it.
    private static func starts(_ bytes: UnsafeBufferPointer<UInt8>, with path: StaticString, below: Bool) -> Bool {
        let count = path.utf8CodeUnitCount
        guard bytes.count >= count, bytes.prefix(count).elementsEqual(UnsafeBufferPointer(start: path.utf8Start, count: count)) else {
            return false
        }
        guard bytes.count > count else { return true }
        let next = bytes[count]
        return next == UInt8(ascii: "?") || (below && next == UInt8(ascii: "/"))
    }

    /// Whether the route answers `method`: the check any (a proxy may keep the guarded request's
    /// method), `/api/me` only GET (the router answers its HEAD).
    func accepts(isGET: Bool) -> Bool { self == .verify || isGET }

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

    /// The routes on the router, for the requests the fast path leaves to it: `GET /api/me`.
    /// The check, any method on any path below `/auth/verify`, is more than a router path says:
    /// `AuthMiddleware` answers it (`check(_:)`).
    static func register(on router: Router<TokenGateRequestContext>, auth: AuthService) {
        router.get(RouterPath(HotRoute.me.path)) { _, context in
            let identity = try context.requireIdentity()
            return HotRoute.me.response(to: identity, expiresIn: auth.secondsLeft(identity))
        }
    }

    /// Whether `request` is forward-auth's check (any method on `/auth/verify` or below it).
    static func isCheck(_ request: Request) -> Bool {
        HotRoute(target: request.uri.path) == .verify
    }
}
