import HTTPTypes
import Hummingbird
import NIOCore
import TokenGate

/// Where a request's token comes from: the `Authorization: Bearer` header, or (for the
/// `sendBeacon` routes) the body. Never the query string.
enum Credentials {
    /// The bearer token of the request; nil when there is no `Authorization` header.
    static func bearer(_ request: Request) throws(TokenGateError) -> Substring? {
        let values = request.headers[values: .authorization]
        guard let value = values.first else { return nil }
        guard values.count == 1 else { throw TokenGateError(.invalidToken, "the token is invalid: more than one Authorization header") }
        let utf8 = value.utf8
        guard utf8.count > 7, value.prefix(7).lowercased() == "bearer " else {
            throw TokenGateError(.missingToken, "a bearer token is required")
        }
        let token = value.dropFirst(7).drop { $0 == " " }
        guard !token.isEmpty, !token.contains(" ") else { throw TokenGateError(.invalidToken, "the token is invalid: malformed header") }
        return token
    }

    /// The bearer token, or `missing_token`.
    static func requireBearer(_ request: Request) throws(TokenGateError) -> Substring {
        guard let token = try bearer(request) else { throw TokenGateError(.missingToken, "a bearer token is required") }
        return token
    }

    /// The token from the header or, failing that, from the body: a `token=` form field, a JSON
    /// `{"token": ...}` or the whole `text/plain` body (what `navigator.sendBeacon` can send).
    static func headerOrBody(_ request: Request, maxBodyBytes: Int) async throws -> Substring {
        if let token = try bearer(request) { return token }
        let body = try await request.body.collect(upTo: maxBodyBytes)
        let bytes = Array(body.readableBytesView)
        if bytes.isEmpty { throw TokenGateError(.missingToken, "a bearer token is required") }
        let type = (request.headers[.contentType] ?? "").lowercased()
        let mediaType = type.split(separator: ";").first.map { $0.trimmingSpaces() } ?? ""
        switch mediaType {
        case "application/x-www-form-urlencoded":
            var found: Substring? = nil
            for pair in String(decoding: bytes, as: UTF8.self).split(separator: "&") where pair.hasPrefix("token=") {
                guard found == nil else { throw TokenGateError(.invalidRequest, "token appears more than once") }
                found = pair.dropFirst("token=".count)
            }
            guard let found, !found.isEmpty else { throw TokenGateError(.missingToken, "a bearer token is required") }
            return found
        case "application/json":
            let object: [String: JSONValue]
            do { object = try StrictJSON.parseObject(bytes) } catch {
                throw TokenGateError(.invalidRequest, "the body is not a JSON object: \(error.reason)")
            }
            guard let token = object["token"]?.string else { throw TokenGateError(.invalidRequest, "the body needs a string field token") }
            return Substring(token)
        case "text/plain", "":
            let text = String(decoding: bytes, as: UTF8.self).trimmingSpaces()
            return Substring(text)
        default:
            throw TokenGateError(.invalidRequest, "unsupported content type")
        }
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var result = Substring(self)
        while let first = result.first, first == " " || first == "\n" || first == "\r" || first == "\t" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\n" || last == "\r" || last == "\t" { result = result.dropLast() }
        return String(result)
    }
}
