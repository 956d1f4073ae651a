import HTTPTypes
import Hummingbird
import NIOCore
import TokenGate

/// Where a request's token comes from: the `Authorization: Bearer` header, or (for the
/// `sendBeacon` routes) the body. Never the query string.
enum Credentials {
    /// The bearer token of the request; nil when there is no `Authorization` header.
    static func bearer(_ request: Request) throws(TokenGateError) -> Substring? {
        var found: String? = nil
        for field in request.headers where field.name == .authorization {
            guard found == nil else { throw TokenGateError.invalidToken("more than one Authorization header") }
            found = field.value
        }
        guard let value = found else { return nil }
        // "Bearer" (any case), one or more spaces, then the token: compared as bytes, no copies.
        let utf8 = value.utf8
        guard utf8.count > 7, utf8.prefix(6).elementsEqual("bearer".utf8, by: { $0 | 0x20 == $1 }),
            utf8[utf8.index(utf8.startIndex, offsetBy: 6)] == UInt8(ascii: " ")
        else {
            throw TokenGateError.missingToken
        }
        var start = utf8.index(utf8.startIndex, offsetBy: 7)
        while start < utf8.endIndex, utf8[start] == UInt8(ascii: " ") { start = utf8.index(after: start) }
        let token = value[start...]
        guard !token.isEmpty, !token.utf8.contains(UInt8(ascii: " ")) else {
            throw TokenGateError.invalidToken("malformed header")
        }
        return token
    }

    /// The bearer token, or `missing_token`.
    static func requireBearer(_ request: Request) throws(TokenGateError) -> Substring {
        guard let token = try bearer(request) else { throw TokenGateError.missingToken }
        return token
    }

    /// The token from the header or, failing that, from the body: a `token=` form field, a JSON
    /// `{"token": ...}` or the whole `text/plain` body (what `navigator.sendBeacon` can send).
    static func headerOrBody(_ request: Request, maxBodyBytes: Int) async throws -> Substring {
        if let token = try bearer(request) { return token }
        let body = try await request.body.collect(upTo: maxBodyBytes)
        let bytes = Array(body.readableBytesView)
        if bytes.isEmpty { throw TokenGateError.missingToken }
        let type = (request.headers[.contentType] ?? "").lowercased()
        let mediaType = type.split(separator: ";").first.map { $0.trimmingSpaces() } ?? ""
        switch mediaType {
        case "application/x-www-form-urlencoded":
            var found: Substring? = nil
            for pair in String(decoding: bytes, as: UTF8.self).split(separator: "&") where pair.hasPrefix("token=") {
                guard found == nil else { throw TokenGateError(.invalidRequest, "token appears more than once") }
                found = pair.dropFirst("token=".count)
            }
            guard let found, !found.isEmpty else { throw TokenGateError.missingToken }
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
