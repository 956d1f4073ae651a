import HTTPTypes
import Hummingbird
import NIOCore
public import TokenGate

/// Where a request's token comes from: the `Authorization: Bearer` header, the body (for the
/// `sendBeacon` routes) or, in cookie mode, the session cookie. Never the query string.
///
/// In cookie mode a state-changing request that is authenticated by the cookie alone must pass
/// the CSRF check (`docs/openapi.yaml`, "Cookie mode"): a same-origin `Sec-Fetch-Site` (or `Origin`), and the
/// `__Host-tg_csrf` cookie echoed in `X-CSRF-Token` (or the body field `csrf`), which must be the
/// session's own CSRF token.
enum Credentials {
    /// The token for `auth` and whether it came from the cookie. `body` is what the beacon routes
    /// found in the body (read only when there is no `Authorization` header).
    static func token(_ request: Request, auth: AuthService, body: BodyCredentials = .none) throws(TokenGateError) -> Substring {
        let header = try bearer(request)
        guard auth.configuration.cookieMode else {
            guard let token = header ?? body.token else { throw TokenGateError.missingToken }
            return token
        }
        let cookie = try SessionCookies.value(of: SessionCookies.token, in: request)
        if let header {
            // Two tabs of one user hold different sessions but share one cookie jar, so a header
            // and cookie may differ; two different users in one request is refused.
            if let cookie, cookie != header, let fromCookie = try? auth.verifyClaims(cookie.utf8),
                let fromHeader = try? auth.verifyClaims(header.utf8), fromCookie.user != fromHeader.user
            {
                throw TokenGateError.invalidToken("the Authorization header and the session cookie name different users")
            }
            return header
        }
        if let token = body.token { return token }
        guard let cookie else { throw TokenGateError.missingToken }
        if changesState(request) {
            try checkOrigin(request)
            let claims = try auth.verifyClaims(cookie.utf8)
            let sent = request.headers[.xCSRFToken].map { Substring($0) } ?? body.csrf
            let jar = try SessionCookies.value(of: SessionCookies.csrf, in: request)
            guard let sent, let jar, ConstantTime.equal(sent.utf8, jar.utf8), auth.isCSRFToken(sent, sid: claims.sid) else {
                throw TokenGateError.csrfFailed
            }
        }
        return cookie
    }

    /// Whether the request changes state: its own method, or for forward-auth (`/auth/verify` is
    /// always a GET from the proxy) the method of the request it guards, which nginx passes as
    /// `X-Original-Method` and Traefik as `X-Forwarded-Method`. Claiming one only makes the check stricter.
    static func changesState(_ request: Request) -> Bool {
        if request.method.changesState { return true }
        for name in [HTTPField.Name.xOriginalMethod, .xForwardedMethod] {
            if let original = request.headers[name], let method = HTTPRequest.Method(original.uppercased()), method.changesState {
                return true
            }
        }
        return false
    }

    /// Cookie mode's origin check for a state-changing request: `Sec-Fetch-Site` must say
    /// same-origin (or none: typed by the user), else `Origin`, when sent, must name this host.
    /// Clients that send neither (curl, servers) pass; they cannot be made to act by another site.
    static func checkOrigin(_ request: Request) throws(TokenGateError) {
        if let site = request.headers[.secFetchSite] {
            guard site == "same-origin" || site == "none" else { throw TokenGateError.csrfFailed }
            return
        }
        guard let origin = request.headers[.origin] else { return }
        guard let host = request.head.authority, let authority = originAuthority(origin),
            authority == host.lowercased()
        else {
            throw TokenGateError.csrfFailed
        }
    }

    /// `host[:port]` of an origin like `https://example.com:8443`; nil for `null` or garbage.
    private static func originAuthority(_ origin: String) -> String? {
        let lowered = origin.lowercased()
        for scheme in ["https://", "http://"] where lowered.hasPrefix(scheme) {
            let rest = lowered.dropFirst(scheme.count)
            guard !rest.isEmpty, !rest.contains("/") else { return nil }
            return String(rest)
        }
        return nil
    }

    /// The bearer token of the request; nil when there is no `Authorization` header.
    static func bearer(_ request: Request) throws(TokenGateError) -> Substring? {
        try HeaderParsing.bearer(authorization: request.headers[values: .authorization])
    }

    /// What a beacon route's body holds: a `token=…&csrf=…` form, a JSON `{"token", "csrf"}` or
    /// the whole `text/plain` body as the token (what `navigator.sendBeacon` can send). The body is
    /// read only when there is no `Authorization` header.
    struct BodyCredentials: Sendable {
        var token: Substring?
        var csrf: Substring?
        static let none = BodyCredentials()
    }

    static func body(_ request: Request, maxBodyBytes: Int, timeout: Duration) async throws -> BodyCredentials {
        if try bearer(request) != nil { return .none }
        let body = try await BodyReader.collect(request, upTo: maxBodyBytes, timeout: timeout)
        let bytes = Array(body.readableBytesView)
        if bytes.isEmpty { return .none }
        switch BodyReader.mediaType(request) {
        case "application/x-www-form-urlencoded":
            // Read by hand, not with Hummingbird's `URLEncodedFormDecoder`: a token or csrf field
            // sent twice must be refused, not resolved to one of them.
            var found = BodyCredentials()
            for pair in String(decoding: bytes, as: UTF8.self).split(separator: "&") {
                let (name, value) = pair.firstIndex(of: "=").map { (pair[..<$0], pair[pair.index(after: $0)...]) } ?? (pair, "")
                switch name {
                case "token":
                    guard found.token == nil else { throw TokenGateError(.invalidRequest, "token appears more than once") }
                    found.token = value
                case "csrf":
                    guard found.csrf == nil else { throw TokenGateError(.invalidRequest, "csrf appears more than once") }
                    found.csrf = value
                default: break
                }
            }
            if found.token?.isEmpty == true { found.token = nil }
            return found
        case "application/json":
            let object: [String: JSONValue]
            do { object = try StrictJSON.parseObject(bytes) } catch {
                throw TokenGateError(.invalidRequest, "the body is not a JSON object: \(error.reason)")
            }
            guard object["token"]?.string != nil || (object["token"] == nil && object["csrf"]?.string != nil) else {
                throw TokenGateError(.invalidRequest, "the body needs a string field token")
            }
            return BodyCredentials(token: object["token"]?.string.map { Substring($0) }, csrf: object["csrf"]?.string.map { Substring($0) })
        case "text/plain", "":
            let text = String(decoding: bytes, as: UTF8.self).trimmingSpaces()
            return BodyCredentials(token: text.isEmpty ? nil : Substring(text))
        default:
            throw TokenGateError(.invalidRequest, "unsupported content type")
        }
    }
}

/// Cookie mode's two cookies: the token (`HttpOnly`) and the readable CSRF token.
enum SessionCookies {
    /// The token cookie. `__Host-` makes browsers insist on `Secure`, `Path=/` and no `Domain`.
    static let token = "__Host-tg_token"
    /// The double-submit CSRF cookie, readable by the page's script. `__Host-` too, so a sibling
    /// subdomain cannot plant a second one that breaks this browser's refreshes (cookie tossing).
    static let csrf = "__Host-tg_csrf"

    /// The value of cookie `name` across the request's `Cookie` headers; nil when absent.
    static func value(of name: String, in request: Request) throws(TokenGateError) -> Substring? {
        try HeaderParsing.cookie(name, in: request.headers[values: .cookie])
    }

    // The `Set-Cookie` values are written here, not with Hummingbird's `Cookie`: it keeps the
    // attributes in a dictionary, so their order in the header changes from run to run.

    /// Sets the token cookie (and, with `csrf`, the CSRF cookie) on a response.
    static func set(token: String, csrf: String?, on response: inout Response) {
        for value in setCookieValues(token: token, csrf: csrf) { response.headers.append(HTTPField(name: .setCookie, value: value)) }
    }

    /// The `Set-Cookie` values for a token (and its session's CSRF token): what a login sets, and
    /// what the service API hands an app's backend to set for its browser.
    static func setCookieValues(token: String, csrf: String?) -> [String] {
        ["\(Self.token)=\(token); Path=/; Secure; HttpOnly; SameSite=Strict"]
            + (csrf.map { ["\(Self.csrf)=\($0); Path=/; Secure; SameSite=Strict"] } ?? [])
    }

    /// Clears both cookies (logout).
    static func clear(on response: inout Response) {
        response.headers.append(HTTPField(name: .setCookie, value: "\(Self.token)=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"))
        response.headers.append(HTTPField(name: .setCookie, value: "\(Self.csrf)=; Path=/; Secure; SameSite=Strict; Max-Age=0"))
        response.headers[.clearSiteData] = #""cookies""#
    }
}

/// The parsing of the `Authorization` and `Cookie` headers, on plain strings (public for the fuzzer).
public enum HeaderParsing {
    /// The token of `Authorization: Bearer <token>` given every `Authorization` value of a request:
    /// nil when there is none; `invalid_token` for two, `missing_token` for another scheme.
    public static func bearer(authorization values: [String]) throws(TokenGateError) -> Substring? {
        guard let value = values.first else { return nil }
        guard values.count == 1 else { throw TokenGateError.invalidToken("more than one Authorization header") }
        // "Bearer" (any case), one or more spaces, then the token: scanned as the value's own
        // contiguous bytes, no copies.
        let utf8 = value.utf8
        switch utf8.withContiguousStorageIfAvailable({ scanBearer($0) }) ?? scanBearer(Array(utf8)) {
        case .otherScheme: throw TokenGateError.missingToken
        case .malformed: throw TokenGateError.invalidToken("malformed header")
        case .token(let offset): return value[utf8.index(utf8.startIndex, offsetBy: offset)...]
        }
    }

    private enum BearerScan {
        case otherScheme, malformed
        /// The token starts at this byte offset.
        case token(Int)
    }

    private static func scanBearer(_ bytes: some RandomAccessCollection<UInt8>) -> BearerScan {
        let space = UInt8(ascii: " ")
        guard bytes.count > 7, bytes.prefix(6).elementsEqual("bearer".utf8, by: { $0 | 0x20 == $1 }),
            bytes[bytes.index(bytes.startIndex, offsetBy: 6)] == space
        else {
            return .otherScheme
        }
        var start = bytes.index(bytes.startIndex, offsetBy: 7)
        while start < bytes.endIndex, bytes[start] == space { start = bytes.index(after: start) }
        guard start < bytes.endIndex, !bytes[start...].contains(space) else { return .malformed }
        return .token(bytes.distance(from: bytes.startIndex, to: start))
    }

    /// The value of cookie `name` across every `Cookie` header value; nil when absent or empty.
    /// A name sent twice is refused: which one the browser meant cannot be known. (Hummingbird's
    /// `request.cookies` keeps one of them silently, so it is not used here: the refusal is the point.)
    public static func cookie(_ name: String, in values: [String]) throws(TokenGateError) -> Substring? {
        // Split on bytes: ';', '=' and ' ' are ASCII, and a ';' followed by a combining mark must
        // still end a pair (as Characters they would merge into one).
        var found: Substring? = nil
        for value in values {
            for pair in value.utf8.split(separator: UInt8(ascii: ";")) {
                let pair = pair.drop { $0 == UInt8(ascii: " ") }
                guard let equals = pair.firstIndex(of: UInt8(ascii: "=")), pair[..<equals].elementsEqual(name.utf8) else { continue }
                guard found == nil else { throw TokenGateError.invalidToken("cookie \(name) sent more than once") }
                var cookie = pair[pair.index(after: equals)...]
                while cookie.last == UInt8(ascii: " ") { cookie = cookie.dropLast() }
                found = Substring(cookie)
            }
        }
        return found?.isEmpty == true ? nil : found
    }
}

extension HTTPRequest.Method {
    /// POST, PUT, PATCH, DELETE and anything unknown: what the CSRF check guards.
    var changesState: Bool { !(self == .get || self == .head || self == .options) }
}
