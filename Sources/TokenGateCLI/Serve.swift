import ArgumentParser
import Foundation
import Hummingbird
import Logging
import RedisClient
import ServiceLifecycle
import TokenGate
import TokenGateHTTP

/// `tokengate serve`: runs the server.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the auth server.",
        discussion: """
            Every flag mirrors a TOKENGATE_* environment variable (shown in brackets); a flag wins over \
            the variable. Bad values stop start-up with one line per problem (exit status 78). \
            SIGHUP re-reads the signing-key, users and service keys files (all or nothing: a bad file \
            is refused with one log line and the old ones stay); SIGTERM stops gracefully.
            """
    )

    // One option per setting, explained by the table (`Setting`); `Environment.givenSettings`
    // finds each by its name.
    @Option(help: .setting(.listen)) var listen: String?
    @Option(help: .setting(.redisURL)) var redisURL: String?
    @Option(name: .setting(.redisTLSCAFile), help: .setting(.redisTLSCAFile)) var redisTLSCAFile: String?
    @Option(name: .setting(.redisTLSCertFile), help: .setting(.redisTLSCertFile)) var redisTLSCertFile: String?
    @Option(name: .setting(.redisTLSKeyFile), help: .setting(.redisTLSKeyFile)) var redisTLSKeyFile: String?
    @Option(name: .setting(.redisTLSServerName), help: .setting(.redisTLSServerName)) var redisTLSServerName: String?
    @Option(help: .setting(.redisSentinelUsername)) var redisSentinelUsername: String?
    @Option(help: .setting(.redisSentinelPassword)) var redisSentinelPassword: String?
    @Option(help: .setting(.redisWait)) var redisWait: String?
    @Option(help: .setting(.signingKeyFile)) var signingKeyFile: String?
    @Option(help: .setting(.signingKey)) var signingKey: String?
    @Option(help: .setting(.tokenTTL)) var tokenTTL: String?
    @Option(help: .setting(.sessionIdle)) var sessionIdle: String?
    @Option(help: .setting(.sessionMaxAge)) var sessionMaxAge: String?
    @Option(help: .setting(.clockLeeway)) var clockLeeway: String?
    @Option(help: .setting(.rotation)) var rotation: String?
    @Option(help: .setting(.usersFile)) var usersFile: String?
    @Option(help: .setting(.keyPrefix)) var keyPrefix: String?
    @Option(help: .setting(.issuer)) var issuer: String?
    @Option(help: .setting(.audience)) var audience: String?
    @Option(help: .setting(.reuseGrace)) var reuseGrace: String?
    @Option(help: .setting(.closeGrace)) var closeGrace: String?
    @Option(help: .setting(.cookie)) var cookie: String?
    @Option(help: .setting(.redisTimeout)) var redisTimeout: String?
    @Option(help: .setting(.trustedProxies)) var trustedProxies: String?
    @Option(help: .setting(.maxSessions)) var maxSessions: String?
    @Option(help: .setting(.clientTimeout)) var clientTimeout: String?
    @Option(help: .setting(.ipv6LimitPrefix)) var ipv6LimitPrefix: String?
    @Option(help: .setting(.adminListen)) var adminListen: String?
    @Option(help: .setting(.adminKeysFile)) var adminKeysFile: String?

    @Flag(help: "Development mode: make a throw-away signing key, and a demo user (demo / demo-password) when no users file is given.")
    var dev = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level \(logLevel)") }
        let values = Environment.settings().merging(Environment.givenSettings(self)) { $1 }
        let configuration: Configuration
        do {
            configuration = try Configuration.parse(values, dev: dev, readFile: Environment.readFile)
        } catch {
            Environment.fail(error.problems)
        }
        let logger = Environment.makeLogger(level: level)
        Environment.warnAboutExposedSecrets(configuration)
        let users = loadUsers(configuration)
        if configuration.ephemeralKey {
            logger.warning("DEV MODE: using a throw-away signing key; tokens die with this process. Never use --dev in production.")
        }
        let parts = await TokenGateApplication.makeParts(configuration: configuration, users: users, logger: logger)
        await checkRedis(parts, logger: logger)
        let openFiles = Environment.raiseOpenFileLimit()
        let budget = ConnectionBudget(openFileLimit: openFiles, serviceAPI: configuration.admin != nil)
        logger.info(
            "accepting at most \(budget.publicConnections) client connections at once (open-file limit \(openFiles), \(budget.reserve) kept for Redis and the runtime)"
        )
        var services: [any Service] = [ReloadService(parts: parts, configuration: configuration, logger: logger)]
        if let admin = configuration.admin {
            logger.info(
                "service API enabled, accepting at most \(budget.serviceConnections) connections at once",
                metadata: ["keys": "\(admin.keys.names.joined(separator: ","))"]
            )
            services.append(
                TokenGateApplication.adminApplication(
                    parts,
                    admin: admin,
                    configuration: configuration,
                    logger: logger,
                    maxConnections: budget.serviceConnections
                ) { channel in
                    let port = channel.localAddress?.port ?? admin.port
                    FileHandle.standardOutput.write(Data("tokengate admin listening on http://\(admin.host):\(port)\n".utf8))
                }
            )
        }
        let app = TokenGateApplication.application(
            parts,
            configuration: configuration,
            logger: logger,
            maxConnections: budget.publicConnections,
            additionalServices: services
        ) { channel in
            let port = channel.localAddress?.port ?? configuration.port
            FileHandle.standardOutput.write(Data("tokengate listening on http://\(configuration.host):\(port)\n".utf8))
        }
        try await app.runService()
    }

    private func loadUsers(_ configuration: Configuration) -> UserStore {
        guard let path = configuration.usersFile else {
            if configuration.dev {
                FileHandle.standardError.write(Data("tokengate: DEV MODE: demo user 'demo' with password 'demo-password'\n".utf8))
                return UserStore(hashes: ["demo": DemoUser.hash])
            }
            let line =
                configuration.admin == nil
                ? "warning: no users file (\(Setting.usersFile.environmentName)); nobody can log in"
                : "no users file (\(Setting.usersFile.environmentName)): /auth/login refuses every name and password; sessions start through the service API"
            FileHandle.standardError.write(Data("tokengate: \(line)\n".utf8))
            return UserStore(hashes: [:])
        }
        do { return try SecretFiles.users(path, readFile: Environment.readFile) } catch { Environment.fail(error.problems) }
    }

    private func checkRedis(_ parts: TokenGateApplication.Parts, logger: Logger) async {
        do throws(RedisError) {
            let policy = try await parts.inspector.maxmemoryPolicy()
            if policy != "noeviction" {
                logger.warning(
                    "Redis maxmemory-policy is \(policy): Redis may evict live tokens and sessions under memory pressure; set it to noeviction"
                )
            }
        } catch {
            logger.warning(
                "Redis is not reachable at start-up; requests fail with 503 and /readyz says so until it is",
                metadata: ["error": "\(error.message)"]
            )
        }
    }
}

/// The `--dev` demo user, when no users file is given.
enum DemoUser {
    /// bcrypt hash of `demo-password`, made at start-up (cost 10 keeps --dev start-up quick).
    static var hash: String { String(UserStore.htpasswdLine(username: "demo", password: "demo-password", cost: 10).dropFirst("demo:".count)) }
}
