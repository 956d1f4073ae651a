import HTTPTypes
import Hummingbird
import Logging
import TokenGate

/// The service API (`docs/openapi.yaml`, tag `service`), on its own listener: an app's backend that authenticated
/// a user itself starts, lists and ends that user's sessions. The same scripts as `/auth/*`, one
/// round trip each, and the same errors. Every route needs a service key (`ServiceKeyMiddleware`).
struct AdminRoutes {
    let auth: AuthService

    private var maxBody: Int { auth.configuration.maxBodyBytes }
    private var bodyTimeout: Duration { auth.configuration.clientTimeout }

    func register(on router: Router<TokenGateRequestContext>) {
        router.post("/admin/v1/sessions") { request, context in try await startSession(request, context) }
        router.get("/admin/v1/users/{user}/sessions") { _, context in
            try await AuthRoutes.sessions(of: try user(context), current: nil, auth: auth)
        }
        router.delete("/admin/v1/users/{user}/sessions") { _, context in
            let user = try user(context)
            let ended = try await auth.store.revokeAll(user: user)
            context.logger.info(
                "service ended all sessions",
                metadata: ["user": "\(UserID.headerValue(user))", "sessions": "\(ended)", "service_key": "\(key(context))"]
            )
            return Response(status: .noContent)
        }
        router.delete("/admin/v1/users/{user}/sessions/{sid}") { _, context in
            let user = try user(context)
            let sid = context.parameters.get("sid") ?? ""
            guard Identifier.isValid(sid), try await auth.store.revoke(user: user, sid: sid) else { throw TokenGateError.notFound }
            context.logger.info(
                "service ended a session",
                metadata: ["user": "\(UserID.headerValue(user))", "sid": "\(sid)", "service_key": "\(key(context))"]
            )
            return Response(status: .noContent)
        }
    }

    /// `POST /admin/v1/sessions` `{"user", "user_agent"?, "ip"?}`: the login answer, and in cookie
    /// mode the `Set-Cookie` values the app passes on to its browser (`set_cookie`).
    private func startSession(_ request: Request, _ context: TokenGateRequestContext) async throws -> Response {
        let object = try await BodyReader.jsonObject(request, upTo: maxBody, timeout: bodyTimeout)
        guard let user = object["user"]?.string else { throw TokenGateError(.invalidRequest, "the body needs a string field user") }
        let userAgent = try optionalString(object, "user_agent") ?? ""
        let address = try optionalString(object, "ip") ?? ""
        guard Self.isAddress(address) else { throw TokenGateError(.invalidRequest, "ip must be an IPv4 or IPv6 address") }
        let grant = try await auth.startSession(user: user, userAgent: userAgent, address: address, keyName: key(context))
        guard auth.configuration.cookieMode else { return AuthRoutes.grantBody(grant) }
        return AuthRoutes.grantBody(grant) { json in
            json.array("set_cookie") { json in
                for value in SessionCookies.setCookieValues(token: grant.token, csrf: auth.csrfToken(sid: grant.sid)) { json.element(value) }
            }
        }
    }

    private func optionalString(_ object: [String: JSONValue], _ name: String) throws(TokenGateError) -> String? {
        guard let value = object[name], value != .null else { return nil }
        guard let text = value.string else { throw TokenGateError(.invalidRequest, "\(name) must be a string") }
        return text
    }

    /// The path's user id, percent-decoded and exactly as the app gave it (`invalid_request` for
    /// what can never be an id, `UserID`).
    private func user(_ context: TokenGateRequestContext) throws(TokenGateError) -> String {
        guard let raw = context.parameters.get("user"), let user = UserID.fromPathSegment(raw) else { throw UserID.invalid }
        return user
    }

    private func key(_ context: TokenGateRequestContext) -> String { context.serviceKey ?? "?" }

    /// Empty, or only the characters of an IPv4/IPv6 address (what the session list shows).
    static func isAddress(_ text: String) -> Bool {
        text.utf8.count <= 45
            && text.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) || (byte >= 0x41 && byte <= 0x46)
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
            }
    }
}

/// Every service-API request needs `Authorization: Bearer <service key>`, the unmatched ones too
/// (a caller without a key learns nothing about the routes). The key's name goes into the request
/// context and the log lines; the key itself never does. Wrong keys are counted per client
/// address: past `maxFailedServiceKeysPerAddress` in the window they get 429. A right key is never
/// refused because of others' failures (a shared address must not lock the app out), and with
/// 256-bit keys there is nothing to guess.
struct ServiceKeyMiddleware: RouterMiddleware {
    typealias Context = TokenGateRequestContext

    let auth: AuthService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let secret = try Credentials.bearer(request) else { throw TokenGateError.missingToken }
        // The keys in force: those of the last reload (SIGHUP).
        guard let name = auth.serviceKeys?.name(of: secret.utf8) else {
            let configuration = auth.configuration
            let wait = try await auth.store.countWrongServiceKey(
                address: IPAddress.limitKey(context.clientAddress, ipv6Prefix: configuration.ipv6LimitPrefix),
                limit: configuration.maxFailedServiceKeysPerAddress,
                window: configuration.failedLoginWindow
            )
            context.logger.warning("wrong service key", metadata: ["address": "\(context.clientAddress)"])
            if wait > 0 { throw TokenGateError(.rateLimited, "too many wrong service keys; try again later", retryAfter: wait) }
            throw TokenGateError.invalidToken("not a service key")
        }
        var context = context
        context.serviceKey = name
        return try await next(request, context)
    }
}
