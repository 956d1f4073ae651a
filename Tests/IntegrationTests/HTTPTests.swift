import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import RedisClient
import Testing
import TokenGate

@testable import TokenGateHTTP

/// End to end over real sockets: the real application, a real Redis.
@Suite("HTTP API end to end")
struct HTTPTests {
    struct Harness {
        let configuration: Configuration
        let redis: any RedisClient
        let clock = TestClock()

        init(_ overrides: [Setting: String] = [:], redisURL: String? = nil, tweak: (inout Configuration) -> Void = { _ in }) throws {
            var configuration = try testConfiguration(overrides, redisURL: redisURL)
            tweak(&configuration)
            self.configuration = configuration
            self.redis = try TestRedis.client()
        }

        func run(_ test: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
            var logger = Logger(label: "test.http")
            logger.logLevel = .critical
            let clock = self.clock
            let parts = await TokenGateApplication.makeParts(
                configuration: configuration,
                users: TestUsers.store,
                logger: logger,
                now: { clock.now() }
            )
            let app = TokenGateApplication.application(parts, configuration: configuration, logger: logger)
            try await app.test(.live, test)
            redis.shutdown()
        }

        /// A token signed with the service's own key for a session that was never created.
        func forgeToken(user: String) async throws -> String {
            let issuer = TokenIssuer(
                signingKey: configuration.signingKeys[0],
                issuer: configuration.issuer,
                audience: configuration.audience,
                tokenTTL: configuration.tokenTTL
            )
            return try issuer.issue(user: user, sid: Identifier.random(), now: clock.now()).token
        }

        /// Every key this test's service wrote.
        func allKeys() async throws -> [String] {
            try await TestRedis.keys(redis, matching: configuration.keys.prefix + "*")
        }
    }

    // MARK: helpers

    static func json(_ body: String) -> ByteBuffer { ByteBuffer(string: body) }

    static func login(_ client: some TestClientProtocol, user: String = "alice", password: String? = nil) async throws -> (token: String, sid: String)
    {
        let response = try await client.execute(
            uri: "/auth/login",
            method: .post,
            headers: [.contentType: "application/json", .userAgent: "tests/1.0"],
            body: json(#"{"username":"\#(user)","password":"\#(password ?? user + "-password")"}"#)
        )
        #expect(response.status == .ok)
        let object = try StrictJSON.parseObject(response.body.readableBytesView)
        return (object["access_token"]?.string ?? "", object["session_id"]?.string ?? "")
    }

    static func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

    static func errorCode(_ response: TestResponse) -> String? {
        (try? StrictJSON.parseObject(response.body.readableBytesView))?["error"]?.string
    }

    /// Sends a bearer request and expects the contract's error.
    static func expectError(
        _ client: some TestClientProtocol,
        _ method: HTTPRequest.Method,
        _ uri: String,
        token: String,
        _ status: HTTPResponse.Status,
        _ code: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let response = try await client.execute(uri: uri, method: method, headers: bearer(token))
        expectError(response, status, code, sourceLocation: sourceLocation)
    }

    static func expectError(
        _ response: TestResponse,
        _ status: HTTPResponse.Status,
        _ code: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(response.status == status, sourceLocation: sourceLocation)
        #expect(errorCode(response) == code, sourceLocation: sourceLocation)
        #expect(response.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
        if status == .unauthorized {
            let challenge = response.headers[.wwwAuthenticate] ?? ""
            #expect(challenge.hasPrefix(#"Bearer realm="tokengate""#), sourceLocation: sourceLocation)
            let tokenError = ["invalid_token", "token_expired", "token_revoked", "session_expired"].contains(code)
            #expect(challenge.contains(#"error="invalid_token""#) == tokenError, sourceLocation: sourceLocation)
        }
        if status == .serviceUnavailable {
            #expect(response.headers[.retryAfter] == "1", "a 503 says when to retry", sourceLocation: sourceLocation)
        }
    }

    // MARK: the walk-through

    @Test("login, use, refresh, list, verify, logout, and the same token refused")
    func walkThrough() async throws {
        let harness = try Harness()
        try await harness.run { client in
            let response = try await client.execute(
                uri: "/auth/login",
                method: .post,
                headers: [.contentType: "application/json"],
                body: Self.json(#"{"username":"Alice","password":"alice-password"}"#)
            )
            #expect(response.status == .ok)
            #expect(response.headers[.cacheControl] == "no-store")
            let body = try StrictJSON.parseObject(response.body.readableBytesView)
            #expect(body["token_type"]?.string == "Bearer")
            #expect(body["expires_in"]?.integer == 30)
            let token = try #require(body["access_token"]?.string)
            let sid = try #require(body["session_id"]?.string)

            let me = try await client.execute(uri: "/api/me", method: .get, headers: Self.bearer(token))
            #expect(me.status == .ok)
            let meBody = try StrictJSON.parseObject(me.body.readableBytesView)
            #expect(meBody["user"]?.string == "alice" && meBody["session_id"]?.string == sid)
            #expect((meBody["expires_in"]?.integer ?? 0) > 25)

            let verify = try await client.execute(uri: "/auth/verify", method: .get, headers: Self.bearer(token))
            #expect(verify.status == .ok)
            #expect(verify.headers[HTTPField.Name("X-Auth-User")!] == "alice")
            #expect(verify.headers[HTTPField.Name("X-Auth-Session")!] == sid)

            let refreshed = try await client.execute(uri: "/auth/refresh", method: .post, headers: Self.bearer(token))
            #expect(refreshed.status == .ok && refreshed.headers[.cacheControl] == "no-store")
            let refreshBody = try StrictJSON.parseObject(refreshed.body.readableBytesView)
            #expect(refreshBody["session_id"]?.string == sid)
            let newToken = try #require(refreshBody["access_token"]?.string)
            #expect(newToken != token)
            // Tokens are multi-use for their TTL: the parent still works after a refresh.
            #expect(try await client.execute(uri: "/api/me", method: .get, headers: Self.bearer(token)).status == .ok)

            let sessions = try await client.execute(uri: "/auth/sessions", method: .get, headers: Self.bearer(newToken))
            #expect(sessions.status == .ok)
            let list = String(buffer: sessions.body)
            #expect(list.hasPrefix("[{\"session_id\":\"\(sid)\""))
            #expect(list.contains(#""current":true"#) && list.contains(#""ip":"127.0.0.1""#))
            #expect(list.range(of: #""created_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ""#, options: .regularExpression) != nil)

            let logout = try await client.execute(uri: "/auth/logout", method: .post, headers: Self.bearer(newToken))
            #expect(logout.status == .noContent)
            for stale in [token, newToken] {
                try await Self.expectError(client, .get, "/api/me", token: stale, .unauthorized, "token_revoked")
            }
            #expect(try await harness.allKeys().isEmpty)
        }
    }

    @Test(
        "logout accepts the token in the body, as navigator.sendBeacon sends it",
        arguments: [
            ("application/x-www-form-urlencoded", "token=%@"), ("application/json", #"{"token":"%@"}"#), ("text/plain;charset=UTF-8", "%@"),
        ]
    )
    func beaconLogout(contentType: String, template: String) async throws {
        let harness = try Harness()
        try await harness.run { client in
            let (token, _) = try await Self.login(client)
            let body = template.replacingOccurrences(of: "%@", with: token)
            let response = try await client.execute(
                uri: "/auth/logout",
                method: .post,
                headers: [.contentType: contentType],
                body: ByteBuffer(string: body)
            )
            #expect(response.status == .noContent)
            #expect(try await harness.allKeys().isEmpty)
        }
    }

    @Test("close shortens the session to CLOSE_GRACE and a refresh (a reload) brings it back")
    func closeThenReload() async throws {
        let harness = try Harness([.closeGrace: "2"])
        try await harness.run { client in
            let (token, sid) = try await Self.login(client)
            let close = try await client.execute(
                uri: "/auth/close",
                method: .post,
                headers: [.contentType: "text/plain"],
                body: ByteBuffer(string: token)
            )
            #expect(close.status == .noContent)
            let sessionKey = harness.configuration.keys.session(user: "alice", sid: sid)
            #expect(try await TestRedis.ttl(harness.redis, sessionKey) <= 2)
            let refreshed = try await client.execute(uri: "/auth/refresh", method: .post, headers: Self.bearer(token))
            #expect(refreshed.status == .ok)
            #expect(try await TestRedis.ttl(harness.redis, sessionKey) > 20)
        }
    }

    @Test("logout-all ends every session of the user and no one else's")
    func logoutAll() async throws {
        let harness = try Harness()
        try await harness.run { client in
            let first = try await Self.login(client)
            let second = try await Self.login(client)
            let bob = try await Self.login(client, user: "bob")
            #expect(try await client.execute(uri: "/auth/logout-all", method: .post, headers: Self.bearer(first.token)).status == .noContent)
            try await Self.expectError(client, .get, "/api/me", token: second.token, .unauthorized, "token_revoked")
            #expect(try await client.execute(uri: "/api/me", method: .get, headers: Self.bearer(bob.token)).status == .ok)
            #expect(try await TestRedis.keys(harness.redis, matching: "\(harness.configuration.keys.prefix)*alice*").isEmpty)
        }
    }

    @Test("a user can revoke their own other session; someone else's is not found")
    func deleteSession() async throws {
        let harness = try Harness()
        try await harness.run { client in
            let first = try await Self.login(client)
            let second = try await Self.login(client)
            let bob = try await Self.login(client, user: "bob")
            try await Self.expectError(client, .delete, "/auth/sessions/\(bob.sid)", token: first.token, .notFound, "not_found")
            #expect(try await client.execute(uri: "/api/me", method: .get, headers: Self.bearer(bob.token)).status == .ok)
            let deleted = try await client.execute(uri: "/auth/sessions/\(second.sid)", method: .delete, headers: Self.bearer(first.token))
            #expect(deleted.status == .noContent)
            try await Self.expectError(client, .get, "/api/me", token: second.token, .unauthorized, "token_revoked")
            try await Self.expectError(client, .delete, "/auth/sessions/\(second.sid)", token: first.token, .notFound, "not_found")
        }
    }

    // MARK: errors, each with nothing written

    @Test("malformed logins get invalid_request and write nothing")
    func invalidRequests() async throws {
        let harness = try Harness()
        try await harness.run { client in
            let cases: [(HTTPFields, String)] = [
                ([.contentType: "text/plain"], #"{"username":"alice","password":"alice-password"}"#),
                ([:], #"{"username":"alice","password":"alice-password"}"#),
                ([.contentType: "application/json"], #"{"username":"alice""#),
                ([.contentType: "application/json"], #"{"username":"alice","password":"x","password":"alice-password"}"#),
                ([.contentType: "application/json"], #"{"username":"alice"}"#),
                ([.contentType: "application/json"], #"{"username":"alice","password":42}"#),
                ([.contentType: "application/json"], #"["alice","alice-password"]"#),
            ]
            for (headers, body) in cases {
                let response = try await client.execute(uri: "/auth/login", method: .post, headers: headers, body: ByteBuffer(string: body))
                Self.expectError(response, .badRequest, "invalid_request")
                #expect(!String(buffer: response.body).contains("alice-password"))
            }
            #expect(try await harness.allKeys().isEmpty)
        }
    }

    @Test("HEAD works wherever GET does: health checks without a token, protected routes with one")
    func head() async throws {
        let harness = try Harness()
        try await harness.run { client in
            for path in ["/healthz", "/readyz", "/tokengate.js"] {
                let response = try await client.execute(uri: path, method: .head)
                #expect(response.status == .ok, "\(path)")
                #expect(response.body.readableBytes == 0, "\(path)")
            }
            // A HEAD answer has no body: the status and the challenge say it all.
            let refused = try await client.execute(uri: "/api/me", method: .head)
            #expect(refused.status == .unauthorized && refused.headers[.wwwAuthenticate] == #"Bearer realm="tokengate""#)
            let (token, _) = try await Self.login(client)
            let me = try await client.execute(uri: "/api/me", method: .head, headers: Self.bearer(token))
            #expect(me.status == .ok && me.body.readableBytes == 0)
        }
    }

    @Test("an auth body over 16 KiB gets payload_too_large")
    func tooLarge() async throws {
        let harness = try Harness()
        try await harness.run { client in
            let padding = String(repeating: "a", count: 17 * 1024)
            let response = try await client.execute(
                uri: "/auth/login",
                method: .post,
                headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"username":"alice","password":"\#(padding)"}"#)
            )
            Self.expectError(response, .contentTooLarge, "payload_too_large")
            #expect(try await harness.allKeys().isEmpty)
        }
    }

    @Test("unknown user and wrong password get the same answer")
    func invalidCredentials() async throws {
        let harness = try Harness()
        try await harness.run { client in
            var bodies: [String] = []
            for body in [
                #"{"username":"alice","password":"nope"}"#, #"{"username":"mallory","password":"nope"}"#,
                #"{"username":"bad name!","password":"nope"}"#, #"{"username":"alice","password":"\#(String(repeating: "p", count: 80))"}"#,
            ] {
                let response = try await client.execute(
                    uri: "/auth/login",
                    method: .post,
                    headers: [.contentType: "application/json"],
                    body: ByteBuffer(string: body)
                )
                Self.expectError(response, .unauthorized, "invalid_credentials")
                bodies.append(String(buffer: response.body))
            }
            #expect(Set(bodies).count == 1)
            // Only the failed-login counters were written, never a session or token.
            #expect(try await harness.allKeys().allSatisfy { $0.contains(":rl:") })
        }
    }

    @Test("too many failed logins of a user from one address get 429 with Retry-After there, for right passwords too; not elsewhere")
    func rateLimited() async throws {
        let harness = try Harness([.trustedProxies: "127.0.0.1"]) { $0.maxFailedLoginsPerUserAndAddress = 3 }
        try await harness.run { client in
            @Sendable func login(_ password: String, user: String = "alice", from address: String) async throws -> TestResponse {
                try await client.execute(
                    uri: "/auth/login",
                    method: .post,
                    headers: [.contentType: "application/json", HTTPField.Name("X-Forwarded-For")!: address],
                    body: ByteBuffer(string: #"{"username":"\#(user)","password":"\#(password)"}"#)
                )
            }
            for _ in 0..<3 {
                Self.expectError(try await login("wrong", from: "203.0.113.9"), .unauthorized, "invalid_credentials")
            }
            let limited = try await login("alice-password", from: "203.0.113.9")
            Self.expectError(limited, .tooManyRequests, "rate_limited")
            let retry = Int(limited.headers[.retryAfter] ?? "") ?? 0
            #expect(retry > 0 && retry <= 300)
            // The attacker's address cannot lock alice out: from her own address she logs in.
            #expect(try await login("alice-password", from: "198.51.100.20").status == .ok)
            // Another user from the attacker's address is not affected.
            #expect(try await login("bob-password", user: "bob", from: "203.0.113.9").status == .ok)
        }
    }

    @Test("behind a trusted proxy, login limits and the session list use the X-Forwarded-For client")
    func forwardedFor() async throws {
        let harness = try Harness([.trustedProxies: "127.0.0.1"]) { $0.maxFailedLoginsPerAddress = 2 }
        try await harness.run { client in
            @Sendable func login(_ body: String, from address: String) async throws -> TestResponse {
                try await client.execute(
                    uri: "/auth/login",
                    method: .post,
                    headers: [.contentType: "application/json", HTTPField.Name("X-Forwarded-For")!: address],
                    body: ByteBuffer(string: body)
                )
            }
            let wrong = #"{"username":"alice","password":"wrong"}"#
            for _ in 0..<2 {
                Self.expectError(try await login(wrong, from: "203.0.113.9"), .unauthorized, "invalid_credentials")
            }
            Self.expectError(try await login(wrong, from: "203.0.113.9"), .tooManyRequests, "rate_limited")
            // Another client behind the same proxy is not locked out, and its address is recorded.
            let response = try await login(#"{"username":"bob","password":"bob-password"}"#, from: "198.51.100.20")
            #expect(response.status == .ok)
            let token = try StrictJSON.parseObject(response.body.readableBytesView)["access_token"]?.string ?? ""
            let sessions = try await client.execute(uri: "/auth/sessions", method: .get, headers: Self.bearer(token))
            #expect(String(buffer: sessions.body).contains(#""ip":"198.51.100.20""#))
        }
    }

    @Test("the per-address login limit counts an IPv6 client by its /64, however it spells its addresses")
    func ipv6Limit() async throws {
        let harness = try Harness([.trustedProxies: "127.0.0.1"]) { $0.maxFailedLoginsPerAddress = 3 }
        try await harness.run { client in
            func login(_ user: String, from address: String) async throws -> TestResponse {
                try await client.execute(
                    uri: "/auth/login",
                    method: .post,
                    headers: [.contentType: "application/json", HTTPField.Name("X-Forwarded-For")!: address],
                    body: ByteBuffer(string: #"{"username":"\#(user)","password":"wrong"}"#)
                )
            }
            // A new address (and a new username) for every guess, all in 2001:db8:7:7::/64.
            for (index, address) in ["2001:db8:7:7::1", "2001:DB8:7:7:0:0:0:2", "2001:db8:7:7:ffff::3"].enumerated() {
                Self.expectError(try await login("guess\(index)", from: address), .unauthorized, "invalid_credentials")
            }
            Self.expectError(try await login("guess9", from: "2001:db8:7:7:1234:5678:9abc:def0"), .tooManyRequests, "rate_limited")
            // Another /64 is another client.
            Self.expectError(try await login("guess10", from: "2001:db8:7:8::1"), .unauthorized, "invalid_credentials")
        }
    }

    @Test("protected routes without a token get missing_token; any other path too, with or without a route")
    func missingToken() async throws {
        let harness = try Harness()
        try await harness.run { client in
            for (uri, method) in [
                ("/api/me", HTTPRequest.Method.get), ("/auth/verify", .get), ("/auth/sessions", .get), ("/auth/refresh", .post),
                ("/auth/logout", .post), ("/auth/logout-all", .post), ("/admin", .get), ("/api/nothing-here", .post),
            ] {
                Self.expectError(try await client.execute(uri: uri, method: method), .unauthorized, "missing_token")
            }
            // A token in the query string is not a token.
            let (token, _) = try await Self.login(client)
            Self.expectError(try await client.execute(uri: "/api/me?access_token=\(token)", method: .get), .unauthorized, "missing_token")
        }
    }

    @Test("with a valid token an unknown path is not_found")
    func notFound() async throws {
        let harness = try Harness()
        try await harness.run { client in
            let (token, _) = try await Self.login(client)
            try await Self.expectError(client, .get, "/api/unknown", token: token, .notFound, "not_found")
        }
    }

    @Test("forged, tampered and foreign tokens get invalid_token and touch nothing")
    func invalidTokens() async throws {
        let harness = try Harness()
        try await harness.run { client in
            let (token, _) = try await Self.login(client)
            let before = try await harness.allKeys()
            let parts = token.split(separator: ".").map(String.init)
            let claims = try StrictJSON.parseObject(Base64URL.decode(Array(parts[1].utf8)) ?? [])
            let sub = claims["sub"]?.string ?? ""
            let mallory = String(decoding: Base64URL.decode(Array(parts[1].utf8)) ?? [], as: UTF8.self)
                .replacingOccurrences(of: "\"sub\":\"\(sub)\"", with: "\"sub\":\"bob\"")
            let noneHeader = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8))
            let wrongKey = HMAC<SHA256>.authenticationCode(
                for: Array("\(parts[0]).\(parts[1])".utf8),
                using: SymmetricKey(data: Array("some-other-key-some-other-key-123".utf8))
            )
            let candidates = [
                "\(noneHeader).\(parts[1]).",
                "\(parts[0]).\(Base64URL.encode(Array(mallory.utf8))).\(parts[2])",
                "\(parts[0]).\(parts[1]).\(Base64URL.encode(Array(wrongKey)))",
                "\(parts[0]).\(parts[1])",
                "not-a-token",
                String(repeating: "a", count: 5000),
            ]
            for candidate in candidates {
                for uri in ["/api/me", "/auth/verify"] {
                    let response = try await client.execute(uri: uri, method: .get, headers: Self.bearer(candidate))
                    Self.expectError(response, .unauthorized, "invalid_token")
                    #expect(!String(buffer: response.body).contains(candidate.prefix(20)))
                }
                try await Self.expectError(client, .post, "/auth/refresh", token: candidate, .unauthorized, "invalid_token")
            }
            var twoHeaders = HTTPFields()
            twoHeaders.append(HTTPField(name: .authorization, value: "Bearer \(token)"))
            twoHeaders.append(HTTPField(name: .authorization, value: "Bearer \(token)"))
            Self.expectError(try await client.execute(uri: "/api/me", method: .get, headers: twoHeaders), .unauthorized, "invalid_token")
            #expect(try await harness.allKeys() == before)
        }
    }

    @Test("a token signed with the right key but never issued is refused: the Redis key decides")
    func forgedWithRightKey() async throws {
        let harness = try Harness()
        try await harness.run { client in
            let forged = try await harness.forgeToken(user: "alice")
            try await Self.expectError(client, .get, "/api/me", token: forged, .unauthorized, "token_revoked")
            try await Self.expectError(client, .post, "/auth/refresh", token: forged, .unauthorized, "token_revoked")
            #expect(try await harness.allKeys().isEmpty)
        }
    }

    @Test("an expired token gets token_expired before Redis is asked")
    func expired() async throws {
        let harness = try Harness()
        try await harness.run { client in
            let (token, _) = try await Self.login(client)
            harness.clock.advance(seconds: 33)
            try await Self.expectError(client, .get, "/api/me", token: token, .unauthorized, "token_expired")
            try await Self.expectError(client, .post, "/auth/refresh", token: token, .unauthorized, "token_expired")
        }
    }

    @Test("past SESSION_MAX_AGE the session gets session_expired and its keys go")
    func sessionExpired() async throws {
        let harness = try Harness([.sessionMaxAge: "1"])
        try await harness.run { client in
            let (token, _) = try await Self.login(client)
            var last: TestResponse? = nil
            let ended = try await eventually(timeout: .seconds(5)) {
                let response = try await client.execute(uri: "/api/me", method: .get, headers: Self.bearer(token))
                last = response
                return response.status != .ok
            }
            #expect(ended)
            if let last { Self.expectError(last, .unauthorized, "session_expired") }
            #expect(try await harness.allKeys().isEmpty)
        }
    }

    @Test("without Redis: 503 store_unavailable with Retry-After, never 200; healthz still 200, readyz 503")
    func storeUnavailable() async throws {
        let harness = try Harness(redisURL: "redis://127.0.0.1:\(try freePort())/0")
        try await harness.run { client in
            let token = try await harness.forgeToken(user: "alice")
            for (uri, method) in [("/api/me", HTTPRequest.Method.get), ("/auth/verify", .get), ("/auth/refresh", .post), ("/auth/logout", .post)] {
                try await Self.expectError(client, method, uri, token: token, .serviceUnavailable, "store_unavailable")
            }
            let login = try await client.execute(
                uri: "/auth/login",
                method: .post,
                headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"username":"alice","password":"alice-password"}"#)
            )
            Self.expectError(login, .serviceUnavailable, "store_unavailable")
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            Self.expectError(try await client.execute(uri: "/readyz", method: .get), .serviceUnavailable, "store_unavailable")
        }
    }

    @Test("health, readiness, metrics and the browser files are public")
    func publicRoutes() async throws {
        let harness = try Harness()
        try await harness.run { client in
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/readyz", method: .get).status == .ok)
            let (token, _) = try await Self.login(client)
            _ = try await client.execute(uri: "/api/me", method: .get, headers: Self.bearer(token))
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(metrics.status == .ok)
            let text = String(buffer: metrics.body)
            #expect(text.contains(#"tokengate_http_requests_total{route="/api/me",status="200"} 1"#))
            #expect(text.contains("tokengate_verify_duration_seconds_bucket"))
            #expect(text.contains("tokengate_live_sessions 1"))
            #expect(text.contains("tokengate_redis_commands_total"))
            let page = try await client.execute(uri: "/", method: .get)
            #expect(page.status == .ok && String(buffer: page.body).contains("/tokengate.js"))
            let script = try await client.execute(uri: "/tokengate.js", method: .get)
            #expect(script.status == .ok && String(buffer: script.body).contains("window.TokenGate"))
        }
    }

    @Test("RFC 3339 timestamps")
    func timestamps() {
        #expect(RFC3339.string(0) == "1970-01-01T00:00:00Z")
        #expect(RFC3339.string(951_782_400) == "2000-02-29T00:00:00Z")
        #expect(RFC3339.string(1_795_745_460) == "2026-11-27T02:11:00Z")
    }
}
