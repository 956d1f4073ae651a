/// A failure the service reports to its client, with the contract's error code.
///
/// The HTTP layer maps each code to its status once (`TokenGateError+HTTP.swift`). The message is
/// for humans and never contains a token, a password or a stack trace.
public struct TokenGateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The contract's error codes (`docs/openapi.yaml`, schema `ErrorCode`).
    public enum Code: String, Sendable, CaseIterable {
        case invalidRequest = "invalid_request"
        case payloadTooLarge = "payload_too_large"
        case headersTooLarge = "headers_too_large"
        case invalidCredentials = "invalid_credentials"
        case missingToken = "missing_token"
        case invalidToken = "invalid_token"
        case tokenExpired = "token_expired"
        case tokenRevoked = "token_revoked"
        case sessionExpired = "session_expired"
        case csrfFailed = "csrf_failed"
        case notFound = "not_found"
        case rateLimited = "rate_limited"
        case storeUnavailable = "store_unavailable"
    }

    /// The contract's error code.
    public let code: Code
    /// Human-readable explanation.
    public let message: String
    /// Seconds until a retry may succeed (`rate_limited` only).
    public let retryAfter: Int?

    /// Creates an error.
    public init(_ code: Code, _ message: String, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// `invalid_token` with the reason (never the token itself).
    public static func invalidToken(_ reason: String) -> TokenGateError { TokenGateError(.invalidToken, "the token is invalid: \(reason)") }
    /// `missing_token`.
    public static let missingToken = TokenGateError(.missingToken, "a bearer token is required")
    /// `tokenExpired`.
    public static let tokenExpired = TokenGateError(.tokenExpired, "the token has expired")
    /// `tokenRevoked`.
    public static let tokenRevoked = TokenGateError(.tokenRevoked, "the token is no longer valid (logged out, replaced or idle)")
    /// `sessionExpired`.
    public static let sessionExpired = TokenGateError(.sessionExpired, "the session reached its maximum age; log in again")
    /// `storeUnavailable`.
    public static let storeUnavailable = TokenGateError(.storeUnavailable, "the session store is unavailable; try again")
    /// `invalidCredentials`.
    public static let invalidCredentials = TokenGateError(.invalidCredentials, "unknown user or wrong password")
    /// `csrfFailed`.
    public static let csrfFailed = TokenGateError(
        .csrfFailed,
        "cross-site request refused: send X-CSRF-Token from the __Host-tg_csrf cookie, from this origin"
    )
    /// `notFound`.
    public static let notFound = TokenGateError(.notFound, "not found")
}
