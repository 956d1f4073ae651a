import ArgumentParser
import Foundation
import Logging
import RedisClient
import TokenGate

/// `tokengate user add NAME`.
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "user", abstract: "Manage the users file.", subcommands: [Add.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add or replace a user in an htpasswd file (bcrypt).",
            discussion: "Reads the password from standard input (one line), or prompts for it on a terminal."
        )

        @Argument(help: "The username (stored lower-case).") var name: String
        @Option(help: "The htpasswd file [env: \(Setting.usersFile.environmentName)].") var usersFile: String?
        @Option(help: "bcrypt cost (4-31).") var cost: UInt8 = 12

        func run() async throws {
            let user = try canonicalUser(name)
            guard (4...31).contains(cost) else { throw ValidationError("cost must be 4-31") }
            guard let path = usersFile ?? ProcessInfo.processInfo.environment[Setting.usersFile.environmentName] else {
                throw ValidationError("give --users-file or set \(Setting.usersFile.environmentName)")
            }
            let password = try readPassword()
            guard !password.isEmpty else { throw ValidationError("the password is empty") }
            guard password.utf8.count <= UserStore.maxPasswordBytes else {
                throw ValidationError("the password is longer than \(UserStore.maxPasswordBytes) bytes, which bcrypt cannot check")
            }
            let existing = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            var lines = existing.split(separator: "\n").map(String.init).filter { line in
                guard let colon = line.firstIndex(of: ":") else { return true }
                return line[..<colon].lowercased() != user
            }
            lines.append(UserStore.htpasswdLine(username: user, password: password, cost: cost))
            let text = lines.joined(separator: "\n") + "\n"
            try writePrivateFile(path, text)
            print("user \(user) written to \(path)")
        }

        private func readPassword() throws -> String {
            if isatty(STDIN_FILENO) == 1 {
                guard let entered = getpass("Password for \(name): ") else { throw ValidationError("no password entered") }
                return String(cString: entered)
            }
            guard let line = readLine(strippingNewline: true) else { throw ValidationError("no password on standard input") }
            return line
        }
    }
}

/// `tokengate sessions NAME`.
struct Sessions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a user's live sessions and tokens with their TTLs, straight from Redis.")

    @Argument(help: "The user id, exactly as its sessions were started (htpasswd users: their lower-case name).") var name: String
    @OptionGroup var redis: RedisOptions

    func run() async throws {
        let user = try userID(name)
        let (client, keys, store) = redis.sessionStore()
        defer { client.shutdown() }
        let (_, sessions) = try await store.sessions(user: user, withTokens: true)
        if sessions.isEmpty {
            print("\(user) has no live sessions")
            return
        }
        for session in sessions {
            print(
                "session \(session.sid)  ttl \(session.expiresIn)s  created \(session.createdAt)  last seen \(session.lastSeen)  ip \(session.address.escapedForTerminal)  ua \(session.userAgent.escapedForTerminal)"
            )
            for token in session.tokens {
                print("  token \(token.jti)  ttl \(token.ttl)s  key \(keys.token(user: user, jti: token.jti))")
            }
        }
    }
}

/// `tokengate revoke NAME [SID]`.
struct Revoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "End one session, or every session, of a user (as logout does).")

    @Argument(help: "The user id, exactly as its sessions were started (htpasswd users: their lower-case name).") var name: String
    @Argument(help: "The session id; without it every session of the user ends.") var sid: String?
    @OptionGroup var redis: RedisOptions

    func run() async throws {
        let user = try userID(name)
        let (client, _, store) = redis.sessionStore()
        defer { client.shutdown() }
        if let sid {
            guard Identifier.isValid(sid), try await store.revoke(user: user, sid: sid) else {
                print("no session \(sid) for \(user)")
                throw ExitCode(1)
            }
            print("revoked session \(sid) of \(user)")
        } else {
            let count = try await store.revokeAll(user: user)
            print("revoked \(count) session(s) of \(user)")
        }
    }
}

/// `tokengate doctor`.
struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check Redis: reachable, maxmemory-policy noeviction, every key with a TTL, no dangling index entries.",
        discussion: """
            With a users file (--users-file or \(Setting.usersFile.environmentName)) it is read as `serve` reads it, \
            and a file that mixes bcrypt costs is reported. Exits 0 when all is well, 1 when a problem was found, \
            2 when Redis cannot be reached.
            """
    )

    @OptionGroup var redis: RedisOptions
    @Option(help: "The htpasswd file to check [env: \(Setting.usersFile.environmentName)].") var usersFile: String?

    func run() async throws {
        var problems = 0
        if let path = usersFile ?? ProcessInfo.processInfo.environment[Setting.usersFile.environmentName], !path.isEmpty {
            problems += checkUsers(path)
        }
        let (client, keys) = redis.connect()
        defer { client.shutdown() }
        let inspector = StoreInspector(redis: client, keys: keys)
        do throws(RedisError) {
            let pong = try await client.send(["PING"])
            print("ok    Redis answers PING (\(pong.string ?? "?"))")
            let policy = try await inspector.maxmemoryPolicy()
            if policy == "noeviction" {
                print("ok    maxmemory-policy is noeviction")
            } else {
                print("FAIL  maxmemory-policy is \(policy); set noeviction so live tokens are never evicted")
                problems += 1
            }
            let report = try await inspector.doctor()
            if report.keysWithoutTTL.isEmpty {
                print("ok    all \(report.keysScanned) key(s) under \(keys.prefix) have a TTL")
            } else {
                problems += 1
                print("FAIL  \(report.keysWithoutTTL.count) key(s) have no TTL:")
                for key in report.keysWithoutTTL.prefix(50) { print("        \(key)") }
            }
            if report.danglingIndexEntries.isEmpty {
                print("ok    no index entry points at a missing session")
            } else {
                problems += 1
                print("FAIL  \(report.danglingIndexEntries.count) index entr(y/ies) point at nothing:")
                for entry in report.danglingIndexEntries.prefix(50) { print("        \(entry)") }
            }
        } catch {
            print("FAIL  Redis: \(error.message)")
            throw ExitCode(2)
        }
        if problems > 0 { throw ExitCode(1) }
    }

    /// Reads the users file; returns 1 when it cannot be used. Mixed bcrypt costs are a warning:
    /// every failed login then pays the highest cost (so its time tells no name), and the users
    /// at lower costs are cheaper to crack should the file leak.
    private func checkUsers(_ path: String) -> Int {
        let users: UserStore
        do {
            users = try UserStore(htpasswd: try String(contentsOfFile: path, encoding: .utf8))
        } catch let error as ConfigurationError {
            print("FAIL  users file \(path): \(error.problems.joined(separator: "; "))")
            return 1
        } catch {
            print("FAIL  users file \(path) cannot be read")
            return 1
        }
        let counts = users.costCounts.sorted { $0.key < $1.key }
        let total = counts.reduce(0) { $0 + $1.value }
        guard counts.count > 1, let highest = counts.last?.key else {
            print("ok    users file: \(total) user(s)" + (counts.first.map { ", bcrypt cost \($0.key)" } ?? ""))
            return 0
        }
        let mix = counts.map { "\($0.value) at cost \($0.key)" }.joined(separator: ", ")
        print(
            "warn  users file mixes bcrypt costs (\(mix)): every failed login pays cost \(highest); set the others' passwords again with `tokengate user add` (cost 12) or `htpasswd -B -C 12`"
        )
        return 0
    }
}

/// `tokengate key generate`.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "key", abstract: "Signing keys.", subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a fresh signing key line for \(Setting.signingKey.environmentName) or a key file.",
            discussion: """
                HS256 (the default) prints a random 384-bit secret in base64url; EdDSA and ES256 print \
                `EdDSA:<seed>` / `ES256:<scalar>`, whose public halves are published at /.well-known/jwks.json. \
                A key file holds one key a line: the first signs, all verify (rotation: README, "Signing keys and rotation").
                """
        )

        @Option(help: "HS256, EdDSA or ES256.") var algorithm = "HS256"

        func run() throws {
            guard let line = SigningKey.generateLine(algorithm: algorithm) else {
                throw ValidationError("unknown algorithm \(algorithm): use HS256, EdDSA or ES256")
            }
            print(line)
        }
    }
}

/// `tokengate admin-key generate NAME --keys-file F`.
struct AdminKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "admin-key", abstract: "Service API keys.", subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a service API key: its hash goes into the keys file, the key itself to standard output, once.",
            discussion: """
                Appends NAME:sha256:<hex> to the keys file (created with mode 0600); instances read the file \
                at start-up (\(Setting.adminKeysFile.environmentName)). Give the printed key to the app's backend \
                (for example TOKENGATE_ADMIN_KEY); it is not stored anywhere else and cannot be shown again. \
                To rotate: generate a second key, deploy it to the app, then delete the old line and restart the instances.
                """
        )

        @Argument(help: "The key's name (1-64 of A-Z a-z 0-9 . _ -), shown in log lines instead of the key.") var name: String
        @Option(help: "The keys file [env: \(Setting.adminKeysFile.environmentName)].") var keysFile: String?

        func run() throws {
            guard ServiceKeys.isValidName(name) else { throw ValidationError("the name must be 1-64 of A-Z a-z 0-9 . _ -") }
            guard let path = keysFile ?? ProcessInfo.processInfo.environment[Setting.adminKeysFile.environmentName] else {
                throw ValidationError("give --keys-file or set \(Setting.adminKeysFile.environmentName)")
            }
            var existing = ""
            if FileManager.default.fileExists(atPath: path) {
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read \(path)") }
                existing = text
                if !existing.trimmingSpaces().isEmpty {
                    let keys: ServiceKeys
                    do { keys = try ServiceKeys(parsing: existing) } catch {
                        throw ValidationError("\(path) is not a keys file: \(error.problems.joined(separator: "; "))")
                    }
                    guard !keys.names.contains(name) else { throw ValidationError("\(path) already has a key named \(name)") }
                }
            }
            let key = ServiceKeys.generate(name: name)
            if !existing.isEmpty, !existing.hasSuffix("\n") { existing += "\n" }
            let text = existing + key.line + "\n"
            try writePrivateFile(path, text)
            print(key.secret)
        }
    }
}

/// Writes a file only its owner can read (mode 0600): users files and service keys files.
private func writePrivateFile(_ path: String, _ text: String) throws {
    guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
        throw ValidationError("cannot write \(path)")
    }
}
