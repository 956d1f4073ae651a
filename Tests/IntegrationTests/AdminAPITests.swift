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

/// The service API (`docs/openapi.yaml`, tag `service`) end to end: its own listener beside the public one, over
/// real sockets, against a real Redis.
@Suite("service API end to end")
struct AdminAPITests {
    /// A service key the tests' instance admits, and one it does not.
    static let key = ServiceKeys.generate(name: "flask-app")
    static let otherKey = ServiceKeys.generate(name: "removed")

    struct Harness {
        let configuration: Configuration
        let redis: any RedisClient

        init(_ overrides: [Setting: String] = [:], tweak: (inout Configuration) -> Void = { _ in }) throws {
            var values: [Setting: String] = [
                .signingKey: signingKey, .listen: "127.0.0.1:0", .redisURL: try TestRedis.url, .keyPrefix: TestRedis.uniquePrefix(),
                .adminListen: "127.0.0.1:0", .adminKeysFile: "service-keys",
            ]
            values.merge(overrides) { $1 }
            var configuration = try Configuration.parse(values) { path in
                guard path == "service-keys" else { return "" }
                return "# the app's key\n\(AdminAPITests.key.line)\n"
            }
            tweak(&configuration)
            self.configuration = configuration
            self.redis = try TestRedis.client()
        }

        /// Runs `test` with a client of the public listener and one of the service API's.
        func run(_ test: @Sendable (_ public: any TestClientProtocol, _ admin: any TestClientProtocol) async throws -> Void) async throws {
            var logger = Logger(label: "test.admin")
            logger.logLevel = .critical
            let parts = await TokenGateApplication.makeParts(configuration: configuration, users: TestUsers.store, logger: logger)
            let admin = try #require(configuration.admin)
            let publicApp = TokenGateApplication.application(parts, configuration: configuration, logger: logger)
            let adminApp = TokenGateApplication.adminApplication(parts, admin: admin, configuration: configuration, logger: logger)
            try await publicApp.test(.live) { publicClient in
                try await adminApp.test(.live) { adminClient in try await test(publicClient, adminClient) }
            }
            redis.shutdown()
        }

        func allKeys() async throws -> [String] {
            try await TestRedis.keys(redis, matching: configuration.keys.prefix + "*")
        }

        /// Keys other than the wrong-service-key counters.
        func sessionKeys() async throws -> [String] {
            try await allKeys().filter { !$0.hasPrefix(configuration.keys.prefix + "rl:") }
        }
    }

    static func service(_ secret: String = key.secret) -> HTTPFields {
        [.authorization: "Bearer \(secret)", .contentType: "application/json"]
    }

    /// Starts a session for `user` through the service API; returns the answer's members.
    static func start(
        _ admin: some TestClientProtocol,
        _ body: String,
        secret: String = key.secret,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [String: JSONValue] {
        let response = try await admin.execute(uri: "/admin/v1/sessions", method: .post, headers: service(secret), body: ByteBuffer(string: body))
        #expect(response.status == .ok, "\(String(buffer: response.body))", sourceLocation: sourceLocation)
        #expect(response.headers[.cacheControl] == "no-store", sourceLocation: sourceLocation)
        return try StrictJSON.parseObject(response.body.readableBytesView)
    }

    static func me(_ client: some TestClientProtocol, _ token: String) async throws -> TestResponse {
        try await client.execute(uri: "/api/me", method: .get, headers: HTTPTests.bearer(token))
    }

    @Test("a session for a user the app authenticated: the login answer, usable, refreshable, listed with the browser's details")
    func startSession() async throws {
        let harness = try Harness()
        try await harness.run { publicClient, admin in
            // Carol is not in the users file: the app checked her password. Her id is kept as given.
            let grant = try await Self.start(admin, #"{"user":"Carol","user_agent":"Firefox/140","ip":"203.0.113.9"}"#)
            #expect(Set(grant.keys) == ["access_token", "token_type", "expires_in", "session_id"])
            #expect(grant["token_type"]?.string == "Bearer")
            #expect(grant["expires_in"]?.integer == Int64(harness.configuration.tokenTTL))
            let token = try #require(grant["access_token"]?.string)
            let sid = try #require(grant["session_id"]?.string)

            let me = try await Self.me(publicClient, token)
            #expect(me.status == .ok)
            let identity = try StrictJSON.parseObject(me.body.readableBytesView)
            #expect(identity["user"]?.string == "Carol" && identity["session_id"]?.string == sid)

            // Refresh works although Carol is in no users file; the session remembers who started it.
            let refreshed = try await publicClient.execute(uri: "/auth/refresh", method: .post, headers: HTTPTests.bearer(token))
            #expect(refreshed.status == .ok)
            let next = try StrictJSON.parseObject(refreshed.body.readableBytesView)
            #expect(next["session_id"]?.string == sid)
            #expect(try await Self.me(publicClient, next["access_token"]?.string ?? "").status == .ok)
            let via = try await harness.redis.send(["HGET", harness.configuration.keys.session(user: "Carol", sid: sid), "via"])
            #expect(via.string == "flask-app")

            let listed = try await admin.execute(uri: "/admin/v1/users/Carol/sessions", method: .get, headers: Self.service())
            #expect(listed.status == .ok)
            let sessions = String(buffer: listed.body)
            #expect(sessions.contains(#""session_id":"\#(sid)""#))
            #expect(sessions.contains(#""user_agent":"Firefox/140""#) && sessions.contains(#""ip":"203.0.113.9""#))
            #expect(sessions.contains(#""current":false"#))
        }
    }

    @Test("ending all of a user's sessions refuses every token at once; ending one leaves the others; unknown ones are 404")
    func endSessions() async throws {
        let harness = try Harness()
        try await harness.run { publicClient, admin in
            let first = try await Self.start(admin, #"{"user":"dave"}"#)
            let second = try await Self.start(admin, #"{"user":"dave"}"#)
            let third = try await Self.start(admin, #"{"user":"dave"}"#)
            let tokens = [first, second, third].map { $0["access_token"]?.string ?? "" }

            let one = try await admin.execute(
                uri: "/admin/v1/users/dave/sessions/\(first["session_id"]?.string ?? "")",
                method: .delete,
                headers: Self.service()
            )
            #expect(one.status == .noContent)
            HTTPTests.expectError(try await Self.me(publicClient, tokens[0]), .unauthorized, "token_revoked")
            #expect(try await Self.me(publicClient, tokens[1]).status == .ok)

            let again = try await admin.execute(
                uri: "/admin/v1/users/dave/sessions/\(first["session_id"]?.string ?? "")",
                method: .delete,
                headers: Self.service()
            )
            HTTPTests.expectError(again, .notFound, "not_found")
            // Another user's session id is not found under this user.
            let carol = try await Self.start(admin, #"{"user":"carol"}"#)
            let foreign = try await admin.execute(
                uri: "/admin/v1/users/dave/sessions/\(carol["session_id"]?.string ?? "")",
                method: .delete,
                headers: Self.service()
            )
            HTTPTests.expectError(foreign, .notFound, "not_found")
            // An empty or dot session id is refused and ends nothing (the router would take the
            // first for the route that ends every session).
            let before = try await harness.sessionKeys()
            let refused = [
                "/admin/v1/users/dave/sessions/", "/admin/v1/users/dave/sessions/.", "/admin/v1/users/dave/sessions/..", "/admin/v1/users//sessions",
            ]
            for path in refused {
                HTTPTests.expectError(try await admin.execute(uri: path, method: .delete, headers: Self.service()), .badRequest, "invalid_request")
            }
            #expect(try await harness.sessionKeys() == before)
            #expect(try await Self.me(publicClient, tokens[1]).status == .ok)

            let all = try await admin.execute(uri: "/admin/v1/users/dave/sessions", method: .delete, headers: Self.service())
            #expect(all.status == .noContent)
            for token in tokens.dropFirst() { HTTPTests.expectError(try await Self.me(publicClient, token), .unauthorized, "token_revoked") }
            #expect(try await TestRedis.keys(harness.redis, matching: harness.configuration.keys.prefix + "{dave}*").isEmpty)
            #expect(try await Self.me(publicClient, carol["access_token"]?.string ?? "").status == .ok)
            // Password sessions end the same way (the password was changed, the account disabled).
            let (alice, _) = try await HTTPTests.login(publicClient)
            #expect(try await admin.execute(uri: "/admin/v1/users/alice/sessions", method: .delete, headers: Self.service()).status == .noContent)
            HTTPTests.expectError(try await Self.me(publicClient, alice), .unauthorized, "token_revoked")
        }
    }

    @Test("missing, wrong and removed service keys and user tokens get 401, write no session, and wrong ones are limited per address")
    func serviceKeys() async throws {
        let harness = try Harness { $0.maxFailedServiceKeysPerAddress = 3 }
        try await harness.run { publicClient, admin in
            let body = ByteBuffer(string: #"{"user":"erin"}"#)
            let missing = try await admin.execute(
                uri: "/admin/v1/sessions",
                method: .post,
                headers: [.contentType: "application/json"],
                body: body
            )
            HTTPTests.expectError(missing, .unauthorized, "missing_token")
            let (userToken, _) = try await HTTPTests.login(publicClient)
            for secret in [Self.otherKey.secret, userToken, Self.key.secret + "x"] {
                let refused = try await admin.execute(uri: "/admin/v1/sessions", method: .post, headers: Self.service(secret), body: body)
                HTTPTests.expectError(refused, .unauthorized, "invalid_token")
                #expect(!String(buffer: refused.body).contains(secret))
            }
            let limited = try await admin.execute(uri: "/admin/v1/users/erin/sessions", method: .get, headers: Self.service(Self.otherKey.secret))
            HTTPTests.expectError(limited, .tooManyRequests, "rate_limited")
            #expect(Int(limited.headers[.retryAfter] ?? "") ?? 0 > 0)
            #expect(try await TestRedis.keys(harness.redis, matching: harness.configuration.keys.prefix + "{erin}*").isEmpty)
            // The right key still works from the same address: others' failures cannot lock the app out.
            _ = try await Self.start(admin, #"{"user":"erin"}"#)
            // Unknown paths: 401 without a key, 404 with one.
            HTTPTests.expectError(try await admin.execute(uri: "/admin/v2/anything", method: .get), .unauthorized, "missing_token")
            HTTPTests.expectError(
                try await admin.execute(uri: "/admin/v2/anything", method: .get, headers: Self.service()),
                .notFound,
                "not_found"
            )
        }
    }

    @Test("malformed bodies and impossible users are 400 and write nothing")
    func badBodies() async throws {
        let harness = try Harness()
        try await harness.run { _, admin in
            for (headers, body) in [
                (Self.service(), "not json"), (Self.service(), #"{"user":"a","user":"b"}"#), (Self.service(), #"{"name":"frank"}"#),
                (Self.service(), #"{"user":7}"#), (Self.service(), #"{"user":"bad\u0001user"}"#), (Self.service(), #"{"user":""}"#),
                (Self.service(), #"{"user":"a\nb"}"#), (Self.service(), #"{"user":"\u0085"}"#),
                (Self.service(), #"{"user":"\#(String(repeating: "x", count: 256))"}"#),
                (Self.service(), #"{"user":"frank","ip":"<script>"}"#), (Self.service(), #"{"user":"frank","user_agent":3}"#),
                ([.authorization: "Bearer \(Self.key.secret)", .contentType: "text/plain"], #"{"user":"frank"}"#),
            ] {
                let response = try await admin.execute(uri: "/admin/v1/sessions", method: .post, headers: headers, body: ByteBuffer(string: body))
                HTTPTests.expectError(response, .badRequest, "invalid_request")
            }
            for name in ["bad%0Auser", "%FF", "%", "%7", String(repeating: "%C3%A9", count: 128)] {
                for method in [HTTPRequest.Method.get, .delete] {
                    let badName = try await admin.execute(uri: "/admin/v1/users/\(name)/sessions", method: method, headers: Self.service())
                    HTTPTests.expectError(badName, .badRequest, "invalid_request")
                }
            }
            #expect(try await harness.sessionKeys().isEmpty)
        }
    }

    /// `id` as one URL path segment: every byte but the unreserved ones percent-encoded.
    static func pathSegment(_ id: String) -> String {
        id.utf8.map { byte in
            let unreserved =
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || "-._~".utf8.contains(byte)
            return unreserved ? String(UnicodeScalar(byte)) : "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
        }.joined()
    }

    @Test("the app's ids round-trip exactly: login answer, /api/me, X-Auth-User, listings, keys; Kate and Kelvin-sign Kate stay two people")
    func appIDs() async throws {
        let harness = try Harness()
        let ids = [
            "Carol Smith", "dave+tag@example.com", "Kate", "\u{212A}ate", "kate", String(repeating: "a", count: 65), "Zoë", "名前",
            "{x}", "x", "a/b", " padded ", "UTF-8''x", "e\u{301}", "\u{E9}", String(repeating: "é", count: 127) + "x",
        ]
        try await harness.run { publicClient, admin in
            var sids: [[UInt8]: String] = [:]
            for id in ids {
                var json = JSONWriter()
                json.object { $0.field("user", id) }
                let grant = try await Self.start(admin, String(decoding: json.bytes, as: UTF8.self))
                let token = try #require(grant["access_token"]?.string)
                let sid = try #require(grant["session_id"]?.string)
                sids[Array(id.utf8)] = sid

                let me = try StrictJSON.parseObject(try await Self.me(publicClient, token).body.readableBytesView)
                #expect(me["user"]?.string.map { Array($0.utf8) } == Array(id.utf8), "\(id)")
                let verify = try await publicClient.execute(uri: "/auth/verify", method: .get, headers: HTTPTests.bearer(token))
                #expect(verify.status == .ok)
                let header = try #require(verify.headers[.init("X-Auth-User")!])
                #expect(header == UserID.headerValue(id))
                #expect(UserID.fromHeaderValue(header).map { Array($0.utf8) } == Array(id.utf8), "\(id)")
                if id.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) && !id.hasPrefix("UTF-8''") { #expect(header == id) }

                // The keys sit under the encoded id, all in the slot of that tag.
                #expect(try await harness.redis.send(["EXISTS", harness.configuration.keys.sessionIndex(user: id)]).int == 1)
                let slot = HashSlot(key: "{" + UserID.keyTag(id) + "}")
                #expect(HashSlot(key: harness.configuration.keys.session(user: id, sid: sid)) == slot)
            }
            // Each id lists exactly its own session (byte-distinct ids are distinct users).
            for id in ids {
                let listed = try await admin.execute(uri: "/admin/v1/users/\(Self.pathSegment(id))/sessions", method: .get, headers: Self.service())
                #expect(listed.status == .ok, "\(id)")
                let body = String(buffer: listed.body)
                #expect(body.components(separatedBy: #""session_id":"#).count == 2, "\(id)")
                #expect(body.contains(#""session_id":"\#(sids[Array(id.utf8)] ?? "-")""#), "\(id)")
            }
            // Ending every session of Kate leaves \u{212A}ate's and kate's.
            let ended = try await admin.execute(uri: "/admin/v1/users/Kate/sessions", method: .delete, headers: Self.service())
            #expect(ended.status == .noContent)
            for (id, count) in [("Kate", 0), ("\u{212A}ate", 1), ("kate", 1)] {
                let listed = try await admin.execute(uri: "/admin/v1/users/\(Self.pathSegment(id))/sessions", method: .get, headers: Self.service())
                #expect(String(buffer: listed.body).components(separatedBy: #""session_id":"#).count == count + 1, "\(id)")
            }
            // One session of "{x}" ends by its id; "x" keeps its own.
            let one = try await admin.execute(
                uri: "/admin/v1/users/\(Self.pathSegment("{x}"))/sessions/\(sids[Array("{x}".utf8)] ?? "")",
                method: .delete,
                headers: Self.service()
            )
            #expect(one.status == .noContent)
            #expect(try await harness.redis.send(["EXISTS", harness.configuration.keys.sessionIndex(user: "x")]).int == 1)
        }
    }

    @Test("the public listener never serves the service API, with a user token or a service key")
    func publicListener() async throws {
        let harness = try Harness()
        try await harness.run { publicClient, _ in
            let body = ByteBuffer(string: #"{"user":"grace"}"#)
            HTTPTests.expectError(
                try await publicClient.execute(uri: "/admin/v1/sessions", method: .post, headers: [.contentType: "application/json"], body: body),
                .unauthorized,
                "missing_token"
            )
            HTTPTests.expectError(
                try await publicClient.execute(uri: "/admin/v1/sessions", method: .post, headers: Self.service(), body: body),
                .unauthorized,
                "invalid_token"
            )
            let (token, _) = try await HTTPTests.login(publicClient)
            var headers = HTTPTests.bearer(token)
            headers[.contentType] = "application/json"
            HTTPTests.expectError(
                try await publicClient.execute(uri: "/admin/v1/sessions", method: .post, headers: headers, body: body),
                .notFound,
                "not_found"
            )
            #expect(try await TestRedis.keys(harness.redis, matching: harness.configuration.keys.prefix + "{grace}*").isEmpty)
        }
    }

    @Test("cookie mode: the answer carries the Set-Cookie values of a login, and the cookie alone authenticates")
    func cookieMode() async throws {
        let harness = try Harness([.cookie: "on"])
        try await harness.run { publicClient, admin in
            let grant = try await Self.start(admin, #"{"user":"heidi"}"#)
            let token = try #require(grant["access_token"]?.string)
            guard case .array(let values)? = grant["set_cookie"] else {
                Issue.record("no set_cookie in \(grant)")
                return
            }
            let cookies = values.compactMap(\.string)
            #expect(cookies.count == 2)
            #expect(cookies.first == "__Host-tg_token=\(token); Path=/; Secure; HttpOnly; SameSite=Strict")
            #expect(cookies.last?.hasPrefix("__Host-tg_csrf=") == true && cookies.last?.hasSuffix("; Path=/; Secure; SameSite=Strict") == true)
            let byCookie = try await publicClient.execute(uri: "/api/me", method: .get, headers: [.cookie: "__Host-tg_token=\(token)"])
            #expect(byCookie.status == .ok)
        }
    }

    /// The service's parts, with a quiet log.
    private static func quietParts(_ harness: Harness) async -> TokenGateApplication.Parts {
        var logger = Logger(label: "test.admin")
        logger.logLevel = .critical
        return await TokenGateApplication.makeParts(configuration: harness.configuration, users: TestUsers.store, logger: logger)
    }

    /// Puts another users file in force, as a reload (`SIGHUP`) or a restart does.
    private static func load(_ users: UserStore, into parts: TokenGateApplication.Parts) async {
        parts.auth.reload(signingKeys: parts.auth.signingKeys, users: users, serviceKeys: parts.auth.serviceKeys)
    }

    @Test("a password session of a user removed from the users file still ends on refresh")
    func removedUser() async throws {
        let harness = try Harness()
        let parts = await Self.quietParts(harness)
        let auth = parts.auth
        let grant = try await auth.login(username: "bob", password: "bob-password", userAgent: "", address: "127.0.0.1")
        let service = try await auth.startSession(user: "ivan", userAgent: "", address: "", keyName: "flask-app")
        await Self.load(try UserStore(htpasswd: ""), into: parts)  // bob is gone from the users file
        await #expect(throws: TokenGateError.tokenRevoked) { try await auth.refresh(Substring(grant.token).utf8) }
        #expect(try await auth.store.sessions(user: "bob").sessions.isEmpty)
        _ = try await auth.refresh(Substring(service.token).utf8)
        parts.redis.shutdown()
        harness.redis.shutdown()
    }

    @Test("a changed password ends the user's password sessions at their next refresh; a new login works")
    func changedPassword() async throws {
        let harness = try Harness()
        let parts = await Self.quietParts(harness)
        let auth = parts.auth
        let before = try await auth.login(username: "alice", password: "alice-password", userAgent: "", address: "127.0.0.1")
        let unchanged = try await auth.login(username: "bob", password: "bob-password", userAgent: "", address: "127.0.0.1")
        let service = try await auth.startSession(user: "alice", userAgent: "", address: "", keyName: "flask-app")
        let newHash = String(UserStore.htpasswdLine(username: "alice", password: "new-password", cost: 4).dropFirst(6))
        await Self.load(UserStore(hashes: ["alice": newHash, "bob": TestUsers.bobHash]), into: parts)
        await #expect(throws: TokenGateError.tokenRevoked) { try await auth.refresh(Substring(before.token).utf8) }
        #expect(try await auth.store.sessions(user: "alice").sessions.map(\.sid) == [service.sid], "only the service session is left")
        _ = try await auth.refresh(Substring(unchanged.token).utf8)
        _ = try await auth.refresh(Substring(service.token).utf8)
        let after = try await auth.login(username: "alice", password: "new-password", userAgent: "", address: "127.0.0.1")
        _ = try await auth.refresh(Substring(after.token).utf8)
        parts.redis.shutdown()
        harness.redis.shutdown()
    }
}
