import Hummingbird
import TokenGate

/// Refuses a path with an empty segment (`/sessions/`, `//`) or a dot segment (`.`, `..`) with
/// `invalid_request`, before any route runs. The router ignores empty segments, so without this
/// `DELETE /admin/v1/users/u/sessions/` (a session id that came out empty, or a client that turned
/// `/sessions/.` into it) would match the route that ends every session of the user.
struct CanonicalPathMiddleware: RouterMiddleware {
    typealias Context = TokenGateRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard Self.isCanonical(request.uri.path) else {
            throw TokenGateError(.invalidRequest, "the path has an empty or dot segment")
        }
        return try await next(request, context)
    }

    /// True for `/` and for paths whose every segment is neither empty nor `.` nor `..`.
    static func isCanonical(_ path: String) -> Bool {
        guard path != "/" else { return true }
        guard path.hasPrefix("/") else { return false }
        return path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().allSatisfy { segment in
            !segment.isEmpty && segment != "." && segment != ".."
        }
    }
}
