import Hummingbird
import TokenGate

/// Deny by default: every route registered after this middleware, and every unmatched path,
/// needs a live token (`TokenGateApplication.router` registers the public routes, and those that
/// check their token in their own Redis script, before it).
///
/// A request without a valid token gets 401 whether or not its path exists, so a stranger learns
/// nothing about the routes; with one, an unknown path gets 404.
///
/// Forward-auth's check (`HotRoute.isCheck`: any method, `/auth/verify` and every path below it)
/// is answered here, as no router path can name it. With per-request rotation only a request that
/// something answers spends its token: the check, or a route's method and path. An unknown path or
/// method is checked without spending it (404 with no successor).
struct AuthMiddleware: RouterMiddleware {
    typealias Context = TokenGateRequestContext

    let auth: AuthService
    let metrics: Metrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let token = try Credentials.token(request, auth: auth)
        let isCheck = HotRoute.isCheck(request)
        // The router sets the endpoint path only for a route of this method and path.
        if isCheck { context.coreContext.endpointPath.value = HotRoute.verify.path }
        let started = ContinuousClock.now
        let admission: AuthService.Admission
        do {
            defer { metrics.recordVerify(ContinuousClock.now - started) }
            admission = try await auth.authenticate(token.utf8, activity: true, spend: context.endpointPath != nil)
        }
        var context = context
        context.identity = admission.identity
        guard let successor = admission.successor else {
            return isCheck ? HotRoute.verify.response(to: admission.identity, expiresIn: 0) : try await next(request, context)
        }
        // Per-request rotation: the token is spent, so the answer carries its successor even when
        // the handler fails; a client left without it would be refused after the grace window.
        var response: Response
        do {
            response = isCheck ? HotRoute.verify.response(to: admission.identity, expiresIn: 0) : try await next(request, context)
        } catch {
            response = try EdgeMiddleware.response(for: error, request: request, context: context)
        }
        response.headers[.xNextToken] = successor
        response.headers[.cacheControl] = "no-store"  // it carries a live token
        return response
    }
}
