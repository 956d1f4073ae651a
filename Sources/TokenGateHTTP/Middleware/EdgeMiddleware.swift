import HTTPTypes
import Hummingbird
import Logging
import TokenGate

/// The outermost middleware: turns every error into the contract's JSON error (the one place
/// this happens) and counts every response by route and status.
struct EdgeMiddleware: RouterMiddleware {
    typealias Context = TokenGateRequestContext
    let metrics: Metrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = try Self.response(for: error, request: request, context: context)
        }
        metrics.countRequest(route: context.endpointPath ?? "unmatched", status: response.status.code)
        return response
    }

    /// The contract's error response for any error.
    static func response(for error: any Error, request: Request, context: Context) throws -> Response {
        let mapped: TokenGateError
        if let known = TokenGateError.from(error) {
            mapped = known
        } else {
            // Unknown failures are logged (without request data) and answered as unavailable.
            context.logger.error("unexpected error", metadata: ["error": "\(String(reflecting: type(of: error)))"])
            mapped = TokenGateError(.storeUnavailable, "the service cannot answer right now")
        }
        return try mapped.response(from: request, context: context)
    }
}
