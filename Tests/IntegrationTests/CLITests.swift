import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import RedisClient
import Testing
import TokenGate

/// The real `tokengate` binary, as operators run it.
@Suite("tokengate command line")
struct CLITests {
    @Test("serve refuses to start without a signing key, naming the setting")
    func noKey() throws {
        let result = try Subprocess.run(["serve"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("TOKENGATE_SIGNING_KEY_FILE or TOKENGATE_SIGNING_KEY: a signing key is required"))
    }

    @Test("bad settings stop start-up with one line per problem, from flags and environment alike")
    func badSettings() throws {
        let result = try Subprocess.run(
            ["serve", "--token-ttl", "0", "--clock-leeway", "9"],
            environment: ["TOKENGATE_SIGNING_KEY": "too-short", "TOKENGATE_REDIS_URL": "http://nope"]
        )
        #expect(result.status == 78)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 4, "\(result.stderr)")
        #expect(lines.allSatisfy { $0.hasPrefix("tokengate: ") })
        #expect(!result.stderr.contains("too-short"))
    }

    @Test("the operator commands check the Redis settings as serve does: same lines, same exit status")
    func operatorSettings() throws {
        for command in [["doctor"], ["sessions", "alice"], ["revoke", "alice"]] {
            let result = try Subprocess.run(command + ["--redis-timeout", "99"], environment: ["TOKENGATE_KEY_PREFIX": "tg*"])
            #expect(result.status == 78, "\(command)")
            #expect(
                result.stderr.split(separator: "\n") == [
                    "tokengate: TOKENGATE_REDIS_TIMEOUT: must be seconds greater than 0 and at most 60, e.g. 1 or 0.5",
                    "tokengate: TOKENGATE_KEY_PREFIX: 1-64 characters of A-Z a-z 0-9 : _ - .",
                ],
                "\(result.stderr)"
            )
        }
        let served = try Subprocess.run(["serve", "--redis-timeout=99", "--dev"], environment: ["TOKENGATE_KEY_PREFIX": "tg*"])
        #expect(
            served.status == 78 && served.stderr.contains("TOKENGATE_REDIS_TIMEOUT: must be seconds greater than 0 and at most 60, e.g. 1 or 0.5")
        )
    }

    @Test("serve --help lists every setting with its environment variable")
    func help() throws {
        let result = try Subprocess.run(["serve", "--help"])
        #expect(result.status == 0)
        let text = result.stdout.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "  ", with: " ")
        for setting in Setting.allCases {
            #expect(result.stdout.contains(setting.flag), "missing \(setting.flag)")
            #expect(text.contains(setting.environmentName), "missing \(setting.environmentName)")
        }
        #expect(text.contains("SIGHUP re-reads the signing-key, users and service keys files"), "the reload is documented")
        for command in [
            ["user", "add", "--help"], ["sessions", "--help"], ["revoke", "--help"], ["doctor", "--help"], ["key", "generate", "--help"],
            ["admin-key", "generate", "--help"],
        ] {
            #expect(try Subprocess.run(command).status == 0, "\(command)")
        }
    }

    @Test("key generate prints a fresh 384-bit base64url key each time")
    func keyGenerate() throws {
        let first = try Subprocess.run(["key", "generate"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let second = try Subprocess.run(["key", "generate"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(first.count == 64 && Base64URL.decode(Array(first.utf8))?.count == 48)
        #expect(first != second)
    }

    @Test("operators: add a user, serve, log in, list, check, revoke, stop gracefully")
    func operatorFlow() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tg-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let usersFile = directory.appendingPathComponent("users").path
        let keyFile = directory.appendingPathComponent("key").path
        let key = try Subprocess.run(["key", "generate"]).stdout
        try key.write(toFile: keyFile, atomically: true, encoding: .utf8)

        let added = try Subprocess.run(["user", "add", "Alice", "--users-file", usersFile, "--cost", "4"], input: "wonderland\n")
        #expect(added.status == 0, "\(added.stderr)")
        let line = try String(contentsOfFile: usersFile, encoding: .utf8)
        #expect(line.hasPrefix("alice:$2b$04$") && !line.contains("wonderland"))
        let mode = try FileManager.default.attributesOfItem(atPath: usersFile)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let prefix = TestRedis.uniquePrefix()
        let redisURL = try TestRedis.url
        let port = try freePort()
        let server = try Subprocess.spawn(
            [
                "serve", "--listen", "127.0.0.1:\(port)", "--signing-key-file", keyFile, "--users-file", usersFile, "--key-prefix", prefix,
            ],
            environment: ["TOKENGATE_REDIS_URL": redisURL]
        )
        let client = try await TestClient.whenServing(port: port, "/healthz")
        let login = try await client.post(
            "/auth/login",
            headers: [.contentType: "application/json"],
            body: ByteBuffer(string: #"{"username":"ALICE","password":"wonderland"}"#)
        )
        #expect(login.status == .ok)
        let body = try StrictJSON.parseObject(login.body?.readableBytesView ?? ByteBuffer().readableBytesView)
        let token = try #require(body["access_token"]?.string)
        let sid = try #require(body["session_id"]?.string)

        let operatorEnvironment = ["TOKENGATE_REDIS_URL": redisURL, "TOKENGATE_KEY_PREFIX": prefix]
        let sessions = try Subprocess.run(["sessions", "alice"], environment: operatorEnvironment)
        #expect(sessions.status == 0 && sessions.stdout.contains("session \(sid)") && sessions.stdout.contains("token "))

        let healthy = try Subprocess.run(["doctor"], environment: operatorEnvironment)
        #expect(healthy.status == 0, "\(healthy.stdout)")
        // A users file mixing bcrypt costs (htpasswd -nbB writes 5, `user add` 12) is reported.
        let mixedFile = directory.appendingPathComponent("mixed-users").path
        let lines = [
            UserStore.htpasswdLine(username: "ann", password: "a", cost: 4), UserStore.htpasswdLine(username: "ben", password: "b", cost: 5),
            UserStore.htpasswdLine(username: "cat", password: "c", cost: 5),
        ]
        try (lines.joined(separator: "\n") + "\n").write(toFile: mixedFile, atomically: true, encoding: .utf8)
        let mixed = try Subprocess.run(["doctor", "--users-file", mixedFile], environment: operatorEnvironment)
        #expect(mixed.status == 0 && mixed.stdout.contains("warn  users file mixes bcrypt costs (1 at cost 4, 2 at cost 5)"), "\(mixed.stdout)")
        let redis = try TestRedis.client()
        defer { redis.shutdown() }
        _ = try await redis.send(["SET", "\(prefix)stray", "no ttl"])
        let sick = try Subprocess.run(["doctor"], environment: operatorEnvironment)
        #expect(sick.status == 1 && sick.stdout.contains("\(prefix)stray"))
        _ = try await redis.send(["DEL", "\(prefix)stray"])

        // An app's own id: listed and ended by exactly that id; doctor reads its encoded keys.
        let store = SessionStore(redis: redis, keys: KeyLayout(prefix: prefix), logger: Logger(label: "test.cli"))
        let appSid = Identifier.random()
        try await store.create(user: "Carol Smith", sid: appSid, jti: Identifier.random(), ttl: 60, userAgent: "test", address: "127.0.0.1")
        #expect(try Subprocess.run(["sessions", "Carol Smith"], environment: operatorEnvironment).stdout.contains("session \(appSid)"))
        #expect(try Subprocess.run(["sessions", "carol smith"], environment: operatorEnvironment).stdout.contains("no live sessions"))
        #expect(try Subprocess.run(["doctor"], environment: operatorEnvironment).status == 0)
        #expect(try Subprocess.run(["revoke", "Carol Smith"], environment: operatorEnvironment).stdout.contains("revoked 1 session"))
        #expect(try Subprocess.run(["sessions", "a\u{1}b"], environment: operatorEnvironment).status != 0)

        let revoked = try Subprocess.run(["revoke", "alice"], environment: operatorEnvironment)
        #expect(revoked.status == 0 && revoked.stdout.contains("revoked 1 session"))
        #expect(try Subprocess.run(["sessions", "alice"], environment: operatorEnvironment).stdout.contains("no live sessions"))
        let refused = try await client.get("/api/me", headers: [.authorization: "Bearer \(token)"])
        #expect(refused.status == .unauthorized)
        #expect(String(buffer: refused.body ?? ByteBuffer()).contains("token_revoked"))
        try await client.shutdown()

        server.signal(SIGTERM)
        #expect(server.wait() == 0)
    }
}

extension CLITests {
    @Test("admin-key generate appends a hashed line (mode 0600), prints the key once, refuses a taken name; serve admits the key")
    func adminKeyGenerate() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tg-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keysFile = directory.appendingPathComponent("service-keys").path
        let first = try Subprocess.run(["admin-key", "generate", "flask-app", "--keys-file", keysFile])
        #expect(first.status == 0, "\(first.stderr)")
        let secret = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.hasPrefix("tgsk_"))
        let second = try Subprocess.run(["admin-key", "generate", "worker"], environment: ["TOKENGATE_ADMIN_KEYS_FILE": keysFile])
        #expect(second.status == 0, "\(second.stderr)")
        let text = try String(contentsOfFile: keysFile, encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2 && lines[0].hasPrefix("flask-app:sha256:") && lines[1].hasPrefix("worker:sha256:"))
        #expect(!text.contains(secret.dropFirst(5)))
        #expect(try FileManager.default.attributesOfItem(atPath: keysFile)[.posixPermissions] as? Int == 0o600)
        let taken = try Subprocess.run(["admin-key", "generate", "flask-app", "--keys-file", keysFile])
        #expect(taken.status != 0 && taken.stderr.contains("already has a key named flask-app"))
        #expect(try Subprocess.run(["admin-key", "generate", "bad name", "--keys-file", keysFile]).status != 0)
        #expect(try String(contentsOfFile: keysFile, encoding: .utf8) == text)

        let keyFile = directory.appendingPathComponent("key").path
        try Subprocess.run(["key", "generate"]).stdout.write(toFile: keyFile, atomically: true, encoding: .utf8)
        let port = try freePort()
        let adminPort = try freePort()
        let server = try Subprocess.spawn(
            [
                "serve", "--listen", "127.0.0.1:\(port)", "--signing-key-file", keyFile, "--admin-listen", "127.0.0.1:\(adminPort)",
                "--admin-keys-file", keysFile, "--key-prefix", TestRedis.uniquePrefix(),
            ],
            environment: ["TOKENGATE_REDIS_URL": try TestRedis.url]
        )
        let client = try await TestClient.whenServing(port: adminPort, "/admin/v1/users/zoe/sessions", headers: [.authorization: "Bearer \(secret)"])
        let started = try await client.post(
            "/admin/v1/sessions",
            headers: [.authorization: "Bearer \(secret)", .contentType: "application/json"],
            body: ByteBuffer(string: #"{"user":"zoe"}"#)
        )
        #expect(started.status == .ok)
        try await client.shutdown()
        server.signal(SIGTERM)
        #expect(server.wait() == 0)

        // One of the pair alone stops start-up, naming both settings.
        let half = try Subprocess.run(["serve", "--signing-key-file", keyFile, "--admin-listen", "127.0.0.1:0"])
        #expect(half.status == 78 && half.stderr.contains("TOKENGATE_ADMIN_LISTEN and TOKENGATE_ADMIN_KEYS_FILE"))
    }
}

extension TestClient {
    /// A client of a `tokengate serve` just started on `port`, once `uri` answers 200 (polled, a
    /// fresh connection per attempt).
    fileprivate static func whenServing(port: Int, _ uri: String, headers: HTTPFields = [:]) async throws -> TestClient {
        var connected: TestClient? = nil
        let up = try await eventually {
            let attempt = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(5)))
            attempt.connect()
            if (try? await attempt.get(uri, headers: headers).status) == .ok {
                connected = attempt
                return true
            }
            try? await attempt.shutdown()
            return false
        }
        #expect(up, "the server answers \(uri) on port \(port)")
        return try #require(connected)
    }

    fileprivate func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestClient.Response {
        try await execute(.init(uri, method: .get, authority: "127.0.0.1", headers: headers))
    }

    fileprivate func post(_ uri: String, headers: HTTPFields = [:], body: ByteBuffer) async throws -> TestClient.Response {
        try await execute(.init(uri, method: .post, authority: "127.0.0.1", headers: headers, body: body))
    }
}

extension CLITests {
    @Test("SIGHUP reloads the key, users and service keys files at once; a bad file is refused and the old ones stay in force")
    func reloadOnSIGHUP() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tg-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let usersFile = directory.appendingPathComponent("users").path
        let keyFile = directory.appendingPathComponent("key").path
        let oldKey = try Subprocess.run(["key", "generate"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try (oldKey + "\n").write(toFile: keyFile, atomically: true, encoding: .utf8)
        #expect(try Subprocess.run(["user", "add", "alice", "--users-file", usersFile, "--cost", "4"], input: "wonderland\n").status == 0)

        let keysFile = directory.appendingPathComponent("service-keys").path
        let oldServiceKey = try Subprocess.run(["admin-key", "generate", "old-app", "--keys-file", keysFile]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)

        let port = try freePort()
        let adminPort = try freePort()
        let server = try Subprocess.spawn(
            [
                "serve", "--listen", "127.0.0.1:\(port)", "--signing-key-file", keyFile, "--users-file", usersFile, "--key-prefix",
                TestRedis.uniquePrefix(), "--admin-listen", "127.0.0.1:\(adminPort)", "--admin-keys-file", keysFile,
            ],
            environment: ["TOKENGATE_REDIS_URL": try TestRedis.url]
        )
        let client = try await TestClient.whenServing(port: port, "/healthz")
        func login(_ user: String, _ password: String) async throws -> (status: HTTPResponse.Status, token: String?) {
            let response = try await client.post(
                "/auth/login",
                headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"username":"\#(user)","password":"\#(password)"}"#)
            )
            let body = try? StrictJSON.parseObject(response.body?.readableBytesView ?? ByteBuffer().readableBytesView)
            return (response.status, body?["access_token"]?.string)
        }
        func metric(_ name: String) async throws -> String? {
            let text = String(buffer: try await client.get("/metrics").body ?? ByteBuffer())
            return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.map { String($0.dropFirst(name.count + 1)) }
        }
        func kid(_ token: String) -> String? {
            let header = token.split(separator: ".").first.flatMap { Base64URL.decode(Array($0.utf8)) } ?? []
            return try? StrictJSON.parseObject(header[...])["kid"]?.string
        }
        func serviceKeyStatus(_ secret: String) async throws -> HTTPResponse.Status {
            let admin = TestClient(host: "127.0.0.1", port: adminPort, configuration: .init(timeout: .seconds(5)))
            admin.connect()
            let status = try await admin.get("/admin/v1/users/zoe/sessions", headers: [.authorization: "Bearer \(secret)"]).status
            try await admin.shutdown()
            return status
        }
        let before = try #require(try await login("alice", "wonderland").token)
        #expect(try await serviceKeyStatus(oldServiceKey) == .ok)
        #expect(try await metric("tokengate_config_generation") == "1.0")

        // A rotation (a new key first, the old one still verifying) and a users file in which alice
        // has a new password and bob is new.
        let newKey = try Subprocess.run(["key", "generate"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try "\(newKey)\n\(oldKey)\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: usersFile)
        #expect(try Subprocess.run(["user", "add", "alice", "--users-file", usersFile, "--cost", "4"], input: "looking-glass\n").status == 0)
        #expect(try Subprocess.run(["user", "add", "bob", "--users-file", usersFile, "--cost", "4"], input: "builder\n").status == 0)
        // A service key rotated: the new one replaces the old one in the file.
        try FileManager.default.removeItem(atPath: keysFile)
        let newServiceKey = try Subprocess.run(["admin-key", "generate", "new-app", "--keys-file", keysFile]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        server.signal(SIGHUP)
        #expect(try await eventually { try await metric("tokengate_config_generation") == "2.0" })

        let bob = try await login("bob", "builder")
        let newKid = try SigningKey(line: newKey).kid
        #expect(bob.status == .ok && kid(bob.token ?? "") == newKid, "new tokens are signed with the new key")
        #expect(try await client.get("/api/me", headers: [.authorization: "Bearer \(before)"]).status == .ok, "the old key still verifies")
        let refresh = try await client.post("/auth/refresh", headers: [.authorization: "Bearer \(before)"], body: ByteBuffer())
        #expect(refresh.status == .unauthorized, "alice's password changed: her session ends at its next refresh")
        #expect(try await login("alice", "wonderland").status == .unauthorized)
        #expect(try await login("alice", "looking-glass").status == .ok)
        #expect(try await serviceKeyStatus(newServiceKey) == .ok)
        #expect(try await serviceKeyStatus(oldServiceKey) == .unauthorized, "the removed service key no longer works")

        // A bad users file: refused, counted, and everything loaded before stays in force.
        try "bob:not-a-bcrypt-hash\n".write(toFile: usersFile, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        #expect(try await eventually { try await metric("tokengate_config_reload_failures_total") == "1" })
        #expect(try await metric("tokengate_config_generation") == "2.0")
        #expect(try await login("bob", "builder").status == .ok)

        try await client.shutdown()
        server.signal(SIGTERM)
        #expect(server.wait() == 0)
        let log = String(decoding: server.stderr.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("reloaded the signing keys and users") && log.contains("reload refused"))
        #expect(!log.contains(newKey) && !log.contains(oldKey), "no key in the log")
        #expect(!log.contains(newServiceKey.dropFirst(5)) && !log.contains(oldServiceKey.dropFirst(5)), "no service key in the log")
    }
}
