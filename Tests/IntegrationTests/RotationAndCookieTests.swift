import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import RedisClient
import Testing
import TokenGate

@testable import TokenGateHTTP

/// Per-request rotation (README, "Per-request rotation") over HTTP, with a real Redis.
@Suite("per-request rotation")
struct RotationTests {
    @Test("parallel requests with one token all get the same successor, and the successor works")
    func oneSuccessorPerParent() async throws {
        // A grace window the whole test fits in on a loaded machine (the default 2 s did not always:
        // the last refresh then came after it and ended the session, as designed).
        let harness = try HTTPTests.Harness([.rotation: "per-request", .reuseGrace: "10"])
        try await harness.run { client in
            let parent = try await HTTPTests.login(client)
            let successors = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?).self) { group in
                for index in 0..<20 {
                    let uri = index.isMultiple(of: 2) ? "/api/me" : "/auth/verify"
                    group.addTask {
                        let response = try await client.execute(uri: uri, method: .get, headers: HTTPTests.bearer(parent.token))
                        return (response.status, response.headers[.xNextToken])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(successors.allSatisfy { $0.0 == .ok })
            let distinct = Set(successors.compactMap(\.1))
            #expect(distinct.count == 1 && successors.allSatisfy { $0.1 != nil })
            let successor = try #require(distinct.first)
            #expect(successor != parent.token)
            // The successor is a live token of the same session, and it has a successor of its own.
            let me = try await client.execute(uri: "/api/me", method: .get, headers: HTTPTests.bearer(successor))
            #expect(me.status == .ok)
            #expect(try StrictJSON.parseObject(me.body.readableBytesView)["session_id"]?.string == parent.sid)
            let third = try #require(me.headers[.xNextToken])
            #expect(third != successor && third != parent.token)
            // A refresh of a rotated token inside the grace window hands out that same successor.
            let refreshed = try await client.execute(uri: "/auth/refresh", method: .post, headers: HTTPTests.bearer(parent.token))
            #expect(try StrictJSON.parseObject(refreshed.body.readableBytesView)["access_token"]?.string == successor)
        }
    }

    @Test("a spent token after its grace window ends its session, and only that session")
    func replayEndsTheSession() async throws {
        let harness = try HTTPTests.Harness([.rotation: "per-request", .reuseGrace: "0"])
        try await harness.run { client in
            let victim = try await HTTPTests.login(client)
            let otherTab = try await HTTPTests.login(client)
            let first = try await client.execute(uri: "/api/me", method: .get, headers: HTTPTests.bearer(victim.token))
            #expect(first.status == .ok)
            let successor = try #require(first.headers[.xNextToken])
            // Grace 0: as soon as Redis's clock has moved on by a millisecond, the parent is a replay.
            var replay = try await client.execute(uri: "/api/me", method: .get, headers: HTTPTests.bearer(victim.token))
            for _ in 0..<1000 where replay.status == .ok {
                #expect(replay.headers[.xNextToken] == successor)
                replay = try await client.execute(uri: "/api/me", method: .get, headers: HTTPTests.bearer(victim.token))
            }
            HTTPTests.expectError(replay, .unauthorized, "token_revoked")
            try await HTTPTests.expectError(client, .get, "/api/me", token: successor, .unauthorized, "token_revoked")
            let keys = try await harness.allKeys()
            #expect(!keys.contains { $0.hasSuffix(victim.sid) }, "the replayed session must be gone")
            #expect(keys.contains { $0.hasSuffix(otherTab.sid) })
            #expect(try await client.execute(uri: "/api/me", method: .get, headers: HTTPTests.bearer(otherTab.token)).status == .ok)
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(String(buffer: metrics.body).contains("tokengate_token_replays_total 1"))
        }
    }

    @Test("a spent token after its grace window is a replay on logout, logout-all and close too: only its session ends, counted")
    func replayOnEndingRoutes() async throws {
        let harness = try HTTPTests.Harness([.rotation: "per-request", .reuseGrace: "0"])
        try await harness.run { client in
            for (index, path) in ["/auth/logout-all", "/auth/logout", "/auth/close"].enumerated() {
                let victim = try await HTTPTests.login(client)
                let otherTab = try await HTTPTests.login(client)
                let first = try await client.execute(uri: "/api/me", method: .get, headers: HTTPTests.bearer(victim.token))
                let successor = try #require(first.headers[.xNextToken])
                // Wait until Redis's clock has passed the moment of the rotation (grace 0).
                let payload = try StrictJSON.parseObject(Base64URL.decode(Array(victim.token.split(separator: ".")[1].utf8)) ?? [])
                let spentKey = harness.configuration.keys.token(user: "alice", jti: payload["jti"]?.string ?? "")
                let rotatedAt = Int64((try await harness.redis.send(["GET", spentKey]).string ?? "").split(separator: " ").first ?? "") ?? 0
                #expect(rotatedAt > 0)
                #expect(
                    try await eventually {
                        let time = try await harness.redis.send(["TIME"]).array ?? []
                        let ms = (Int64(time.first?.string ?? "") ?? 0) * 1000 + (Int64(time.last?.string ?? "") ?? 0) / 1000
                        return ms > rotatedAt
                    }
                )
                let replay = try await client.execute(uri: path, method: .post, headers: HTTPTests.bearer(victim.token))
                HTTPTests.expectError(replay, .unauthorized, "token_revoked")
                try await HTTPTests.expectError(client, .get, "/api/me", token: successor, .unauthorized, "token_revoked")
                #expect(
                    try await client.execute(uri: "/api/me", method: .get, headers: HTTPTests.bearer(otherTab.token)).status == .ok,
                    "\(path): the user's other session must live on"
                )
                let metrics = try await client.execute(uri: "/metrics", method: .get)
                #expect(String(buffer: metrics.body).contains("tokengate_token_replays_total \(index + 1)"), "\(path)")
            }
        }
    }

    @Test("an answer to an admitted request carries the successor even when the route fails")
    func successorOnErrors() async throws {
        let harness = try HTTPTests.Harness([.rotation: "per-request"])
        try await harness.run { client in
            let parent = try await HTTPTests.login(client)
            let missing = try await client.execute(
                uri: "/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA",
                method: .delete,
                headers: HTTPTests.bearer(parent.token)
            )
            HTTPTests.expectError(missing, .notFound, "not_found")
            let successor = try #require(missing.headers[.xNextToken])
            #expect(try await client.execute(uri: "/api/me", method: .get, headers: HTTPTests.bearer(successor)).status == .ok)
        }
    }

    @Test("only what something answers spends a token: the check (any method, any path below /auth/verify) or a route")
    func onlyAnsweredRequestsSpend() async throws {
        // Grace 0: a token used again once it was spent ends its session (401).
        let harness = try HTTPTests.Harness([.rotation: "per-request", .reuseGrace: "0"])
        try await harness.run { client in
            var token = try await HTTPTests.login(client).token
            for (uri, method) in [("/api/nothing-here", HTTPRequest.Method.get), ("/auth/verifyx", .get), ("/api/me", .post)] {
                let refused = try await client.execute(uri: uri, method: method, headers: HTTPTests.bearer(token))
                #expect(refused.status == .notFound, "\(method) \(uri)")
                #expect(refused.headers[.xNextToken] == nil, "\(method) \(uri)")
            }
            for (uri, method) in [("/auth/verify", HTTPRequest.Method.get), ("/auth/verify/echo?x=1", .post), ("/auth/verify/", .put)] {
                let check = try await client.execute(uri: uri, method: method, headers: HTTPTests.bearer(token))
                #expect(check.status == .ok, "\(method) \(uri)")
                #expect(check.headers[.xAuthUser] == "alice", "\(method) \(uri)")
                token = try #require(check.headers[.xNextToken])
            }
        }
    }
}

/// Cookie mode (README, "Cookie mode") over HTTP, with a real Redis.
@Suite("cookie mode")
struct CookieModeTests {
    static func setCookies(_ response: TestResponse) -> [String] {
        response.headers.filter { $0.name == .setCookie }.map(\.value)
    }

    static func cookie(_ name: String, in response: TestResponse) -> String? {
        for line in setCookies(response) where line.hasPrefix(name + "=") {
            return String(line.dropFirst(name.count + 1).prefix { $0 != ";" })
        }
        return nil
    }

    static func loginResponse(_ client: some TestClientProtocol, user: String = "alice") async throws -> TestResponse {
        try await client.execute(
            uri: "/auth/login",
            method: .post,
            headers: [.contentType: "application/json"],
            body: ByteBuffer(string: #"{"username":"\#(user)","password":"\#(user)-password"}"#)
        )
    }

    /// Logs alice in; her token and CSRF cookies, and the `Cookie` header a browser would send.
    static func loggedIn(_ client: some TestClientProtocol) async throws -> (token: String, csrf: String, jar: String) {
        let login = try await loginResponse(client)
        let token = try #require(cookie("__Host-tg_token", in: login))
        let csrf = try #require(cookie("__Host-tg_csrf", in: login))
        return (token, csrf, "__Host-tg_token=\(token); __Host-tg_csrf=\(csrf)")
    }

    @Test("login sets an HttpOnly, Secure, SameSite=Strict token cookie and a readable CSRF cookie")
    func cookiesOnLogin() async throws {
        let harness = try HTTPTests.Harness([.cookie: "on"])
        try await harness.run { client in
            let response = try await Self.loginResponse(client)
            #expect(response.status == .ok)
            #expect(response.headers[.cacheControl] == "no-store")
            let token = try StrictJSON.parseObject(response.body.readableBytesView)["access_token"]?.string
            let lines = Self.setCookies(response)
            #expect(lines.contains("__Host-tg_token=\(token ?? ""); Path=/; Secure; HttpOnly; SameSite=Strict"))
            let csrf = try #require(Self.cookie("__Host-tg_csrf", in: response))
            #expect(lines.contains("__Host-tg_csrf=\(csrf); Path=/; Secure; SameSite=Strict"))
            #expect(!lines.contains { $0.contains("Max-Age") || $0.contains("Expires") }, "session cookies only")
            // The cookie alone authenticates a read.
            let me = try await client.execute(uri: "/api/me", method: .get, headers: [.cookie: "__Host-tg_token=\(token ?? "")"])
            #expect(me.status == .ok)
        }
    }

    @Test("a state-changing request with the cookie alone needs same-origin and the double-submit token")
    func csrfCheck() async throws {
        let harness = try HTTPTests.Harness([.cookie: "on"])
        try await harness.run { client in
            let (token, csrf, jar) = try await Self.loggedIn(client)
            let refused: [HTTPFields] = [
                [.cookie: jar],  // no token echoed
                [.cookie: jar, .xCSRFToken: (csrf.hasPrefix("x") ? "y" : "x") + csrf.dropFirst()],  // wrong token
                [.cookie: jar, .xCSRFToken: csrf, .secFetchSite: "same-site"],  // another origin of the site
                [.cookie: jar, .xCSRFToken: csrf, .secFetchSite: "cross-site"],
                [.cookie: jar, .xCSRFToken: csrf, .origin: "http://evil.example"],
                [.cookie: "__Host-tg_token=\(token); __Host-tg_csrf=forged", .xCSRFToken: "forged"],  // made-up pair
            ]
            for headers in refused {
                let response = try await client.execute(uri: "/auth/logout-all", method: .post, headers: headers)
                HTTPTests.expectError(response, .forbidden, "csrf_failed")
            }
            #expect(try await client.execute(uri: "/api/me", method: .get, headers: [.cookie: jar]).status == .ok, "nothing was logged out")
            let allowed = try await client.execute(
                uri: "/auth/logout-all",
                method: .post,
                headers: [.cookie: jar, .xCSRFToken: csrf, .secFetchSite: "same-origin"]
            )
            #expect(allowed.status == .noContent)
            #expect(allowed.headers[.clearSiteData] == #""cookies""#)
            #expect(Self.setCookies(allowed).contains("__Host-tg_token=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"))
            #expect(try await harness.allKeys().isEmpty)
        }
    }

    @Test("both cookies are __Host- cookies: one a sibling subdomain plants under the plain name changes nothing")
    func plantedCookie() async throws {
        let harness = try HTTPTests.Harness([.cookie: "on"])
        try await harness.run { client in
            let (_, csrf, jar) = try await Self.loggedIn(client)
            let login = try await Self.loginResponse(client)
            for line in Self.setCookies(login) {
                #expect(line.hasPrefix("__Host-") && line.contains("; Path=/; Secure") && !line.contains("Domain"), "\(line)")
            }
            // What a sibling subdomain can set (Domain=<parent>): cookies without the prefix. The
            // browser sends them along; TokenGate never reads them.
            let planted = "tg_csrf=planted; tg_token=planted; \(jar); tg_csrf=planted-too"
            let refresh = try await client.execute(
                uri: "/auth/refresh",
                method: .post,
                headers: [.cookie: planted, .xCSRFToken: csrf, .secFetchSite: "same-origin"]
            )
            #expect(refresh.status == .ok)
            let guarded = try await client.execute(
                uri: "/auth/verify",
                method: .get,
                headers: [.cookie: planted, .xOriginalMethod: "POST", .xCSRFToken: csrf, .secFetchSite: "same-origin"]
            )
            #expect(guarded.status == .ok)
            // The planted value echoed as the proof is still refused.
            let forged = try await client.execute(
                uri: "/auth/logout-all",
                method: .post,
                headers: [.cookie: planted, .xCSRFToken: "planted", .secFetchSite: "same-origin"]
            )
            HTTPTests.expectError(forged, .forbidden, "csrf_failed")
        }
    }

    @Test("forward-auth: /auth/verify checks CSRF for the guarded request's method; logout clears only its own cookies")
    func forwardAuthAndLogout() async throws {
        let harness = try HTTPTests.Harness([.cookie: "on"])
        try await harness.run { client in
            let (token, csrf, jar) = try await Self.loggedIn(client)
            let page = try await client.execute(uri: "/auth/verify", method: .get, headers: [.cookie: jar, .xOriginalMethod: "GET"])
            #expect(page.status == .ok)
            let post = try await client.execute(uri: "/auth/verify", method: .get, headers: [.cookie: jar, .xOriginalMethod: "POST"])
            HTTPTests.expectError(post, .forbidden, "csrf_failed")
            let proven = try await client.execute(
                uri: "/auth/verify",
                method: .get,
                headers: [.cookie: jar, .xOriginalMethod: "POST", .xCSRFToken: csrf, .secFetchSite: "same-origin"]
            )
            #expect(proven.status == .ok)
            // Logging out another session (a token in the body, as a cross-site form could send) ends
            // that session but leaves this browser's cookies alone.
            let other = try await HTTPTests.login(client)
            let foreign = try await client.execute(
                uri: "/auth/logout",
                method: .post,
                headers: [.cookie: jar, .contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "token=\(other.token)")
            )
            #expect(foreign.status == .noContent)
            #expect(foreign.headers[.clearSiteData] == nil && Self.setCookies(foreign).isEmpty)
            let own = try await client.execute(uri: "/auth/logout", method: .post, headers: [.cookie: jar, .authorization: "Bearer \(token)"])
            #expect(own.status == .noContent && own.headers[.clearSiteData] == #""cookies""#)
        }
    }

    @Test("the close beacon carries its CSRF proof in the body")
    func beacon() async throws {
        let harness = try HTTPTests.Harness([.cookie: "on"])
        try await harness.run { client in
            let (_, csrf, cookies) = try await Self.loggedIn(client)
            let jar: HTTPFields = [.cookie: cookies, .contentType: "application/x-www-form-urlencoded"]
            let without = try await client.execute(uri: "/auth/close", method: .post, headers: jar, body: ByteBuffer(string: "csrf="))
            HTTPTests.expectError(without, .forbidden, "csrf_failed")
            let with = try await client.execute(uri: "/auth/close", method: .post, headers: jar, body: ByteBuffer(string: "csrf=\(csrf)"))
            #expect(with.status == .noContent)
        }
    }

    @Test("header and cookie naming different users, or a cookie sent twice, are refused")
    func disagreement() async throws {
        let harness = try HTTPTests.Harness([.cookie: "on"])
        try await harness.run { client in
            let alice = try await HTTPTests.login(client)
            let aliceTab = try await HTTPTests.login(client)
            let bob = try await HTTPTests.login(client, user: "bob")
            var headers = HTTPTests.bearer(alice.token)
            headers[.cookie] = "__Host-tg_token=\(bob.token)"
            HTTPTests.expectError(try await client.execute(uri: "/api/me", method: .get, headers: headers), .unauthorized, "invalid_token")
            // Another tab of the same user: the header names the request's session.
            headers[.cookie] = "__Host-tg_token=\(aliceTab.token)"
            let me = try await client.execute(uri: "/api/me", method: .get, headers: headers)
            #expect(me.status == .ok)
            #expect(try StrictJSON.parseObject(me.body.readableBytesView)["session_id"]?.string == alice.sid)
            let twice: HTTPFields = [.cookie: "__Host-tg_token=\(alice.token); __Host-tg_token=\(bob.token)"]
            HTTPTests.expectError(try await client.execute(uri: "/api/me", method: .get, headers: twice), .unauthorized, "invalid_token")
        }
    }

    @Test("cookie parsing cuts on bytes: a ';' before a combining mark still ends a pair")
    func cookieBytes() throws {
        // Found by the fuzzer: split on Characters, ";\u{301}" is one Character, and the value came
        // back as "A;\u{301}__Host-tg_token=B" (a value holding ';'). On bytes the pair ends at ';'
        // (the next name starts with U+0301, so it is another cookie).
        #expect(try HeaderParsing.cookie("__Host-tg_token", in: ["__Host-tg_token=A;\u{301}__Host-tg_token=B"]) == "A")
        #expect(throws: TokenGateError.self) {
            try HeaderParsing.cookie("__Host-tg_token", in: ["__Host-tg_token=A;\u{301}x; __Host-tg_token=B"])
        }
        #expect(try HeaderParsing.cookie("tg_csrf", in: ["a=1; tg_csrf=x;\u{301}b=2"]) == "x")
        #expect(try HeaderParsing.cookie("tg_csrf", in: ["tg_csrf=x\u{37E} b=2"]) == "x\u{37E} b=2", "U+037E is not a separator")
        #expect(try HeaderParsing.cookie("tg_csrf", in: ["x=1", "tg_csrf=y "]) == "y")
    }

    @Test("a login from another site is refused in cookie mode")
    func loginCSRF() async throws {
        let harness = try HTTPTests.Harness([.cookie: "on"])
        try await harness.run { client in
            let response = try await client.execute(
                uri: "/auth/login",
                method: .post,
                headers: [.contentType: "application/json", .secFetchSite: "cross-site"],
                body: ByteBuffer(string: #"{"username":"alice","password":"alice-password"}"#)
            )
            HTTPTests.expectError(response, .forbidden, "csrf_failed")
            #expect(try await harness.allKeys().isEmpty)
        }
    }
}
