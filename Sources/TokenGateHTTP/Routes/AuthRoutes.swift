import HTTPTypes
import Hummingbird
import NIOCore
import TokenGate

/// `/auth/*`: login, refresh, logout, close, logout-all, and sessions (forward-auth's `/auth/verify` is a `HotRoute`).
/// Their parameters, answers and errors are `docs/openapi.yaml`'s.
struct AuthRoutes {
    let auth: AuthService

    private var maxBody: Int { auth.configuration.maxBodyBytes }
    private var bodyTimeout: Duration { auth.configuration.clientTimeout }

    /// Login, and the routes that check their token inside their own Redis script (one round
    /// trip, not two): registered ahead of `AuthMiddleware`.
    func registerOpen(on router: Router<TokenGateRequestContext>) {
        router.post("/auth/login") { request, context in try await login(request, context) }
        router.post("/auth/refresh") { request, _ in
            let grant = try await auth.refresh(try Credentials.token(request, auth: auth).utf8)
            return grantResponse(grant)
        }
        router.post("/auth/logout") { request, _ in
            let body = try await Credentials.body(request, maxBodyBytes: maxBody, timeout: bodyTimeout)
            let token = try Credentials.token(request, auth: auth, body: body)
            try await auth.logout(token.utf8)
            return ended(request, token: token, everySession: false)
        }
        router.post("/auth/close") { request, _ in
            let body = try await Credentials.body(request, maxBodyBytes: maxBody, timeout: bodyTimeout)
            try await auth.close(try Credentials.token(request, auth: auth, body: body).utf8)
            return Response(status: .noContent)
        }
        router.post("/auth/logout-all") { request, _ in
            let token = try Credentials.token(request, auth: auth)
            try await auth.logoutAll(token.utf8)
            return ended(request, token: token, everySession: true)
        }
    }

    /// The routes that need a live token (`AuthMiddleware` checks it).
    func registerProtected(on router: Router<TokenGateRequestContext>) {
        router.get("/auth/sessions") { _, context in try await sessions(context) }
        router.delete("/auth/sessions/{sid}") { _, context in
            let identity = try context.requireIdentity()
            let sid = context.parameters.get("sid") ?? ""
            guard Identifier.isValid(sid), try await auth.store.revoke(user: identity.user, sid: sid) else {
                throw TokenGateError.notFound
            }
            return Response(status: .noContent)
        }
    }

    private func login(_ request: Request, _ context: TokenGateRequestContext) async throws -> Response {
        // Cookie mode: another site must not log the browser in (into the attacker's account).
        if auth.configuration.cookieMode { try Credentials.checkOrigin(request) }
        let object = try await BodyReader.jsonObject(request, upTo: maxBody, timeout: bodyTimeout)
        guard let username = object["username"]?.string, let password = object["password"]?.string else {
            throw TokenGateError(.invalidRequest, "the body needs string fields username and password")
        }
        let grant = try await auth.login(
            username: username,
            password: password,
            userAgent: request.headers[.userAgent] ?? "",
            address: auth.configuration.trustedProxies.clientAddress(
                peer: context.clientAddress,
                forwardedFor: request.headers[values: .xForwardedFor]
            )
        )
        return grantResponse(grant)
    }

    private func sessions(_ context: TokenGateRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        return try await Self.sessions(of: identity.user, current: identity.sid, auth: auth)
    }

    /// `user`'s live sessions as `GET /auth/sessions` lists them (the service API lists them alike).
    static func sessions(of user: String, current: String?, auth: AuthService) async throws -> Response {
        let (now, sessions) = try await auth.store.sessions(user: user)
        var json = JSONWriter()
        json.array { json in
            for session in sessions where now - session.lastSeen < Int64(auth.configuration.sessionIdle) {
                json.object {
                    $0.field("session_id", session.sid)
                    $0.field("created_at", RFC3339.string(session.createdAt))
                    $0.field("last_seen", RFC3339.string(session.lastSeen))
                    $0.field("expires_in", session.expiresIn)
                    $0.field("user_agent", session.userAgent)
                    $0.field("ip", session.address)
                    $0.field("current", session.sid == current)
                }
            }
        }
        return Response.json(json)
    }

    /// A logout's answer: 204, and in cookie mode the cookies cleared.
    /// In cookie mode the cookies are cleared (with `Clear-Site-Data`), but only when the browser's
    /// token cookie belongs to what just ended: a logout with some other token (another tab's, or one
    /// a cross-site form carries) must not wipe this browser's cookies.
    private func ended(_ request: Request, token: Substring, everySession: Bool) -> Response {
        var response = Response(status: .noContent)
        guard auth.configuration.cookieMode, let cookie = try? SessionCookies.value(of: SessionCookies.token, in: request) else {
            return response
        }
        var same = cookie == token
        if !same, let jar = try? auth.verifyClaims(cookie.utf8), let ended = try? auth.verifyClaims(token.utf8) {
            same = everySession ? jar.user == ended.user : jar.sid == ended.sid
        }
        if same { SessionCookies.clear(on: &response) }
        return response
    }

    /// A token's answer (login and refresh); in cookie mode the cookies are set too.
    private func grantResponse(_ grant: AuthService.Grant) -> Response {
        var response = Self.grantBody(grant)
        if auth.configuration.cookieMode {
            SessionCookies.set(token: grant.token, csrf: auth.csrfToken(sid: grant.sid), on: &response)
        }
        return response
    }

    /// The login answer's body, `{"access_token","token_type","expires_in","session_id"}`, with
    /// `extra` members after them (the service API's `set_cookie`).
    static func grantBody(_ grant: AuthService.Grant, extra: (inout JSONWriter) -> Void = { _ in }) -> Response {
        var json = JSONWriter()
        json.object {
            $0.field("access_token", grant.token)
            $0.field("token_type", "Bearer")
            $0.field("expires_in", Int64(grant.expiresIn))
            $0.field("session_id", grant.sid)
            extra(&$0)
        }
        var response = Response.json(json)
        response.headers[.pragma] = "no-cache"
        return response
    }
}

extension TokenGateRequestContext {
    func requireIdentity() throws(TokenGateError) -> VerifiedToken {
        guard let identity else { throw TokenGateError.missingToken }
        return identity
    }
}

extension Response {
    static func json(_ writer: JSONWriter, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: writer.bytes))
        )
    }
}
