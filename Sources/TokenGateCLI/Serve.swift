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

    @Option(help: help(.listen)) var listen: String?
    @Option(help: help(.redisURL)) var redisURL: String?
    // Named from the setting: argument-parser would run "TLSCA" together.
    @Option(name: name(.redisTLSCAFile), help: help(.redisTLSCAFile)) var redisTLSCAFile: String?
    @Option(name: name(.redisTLSCertFile), help: help(.redisTLSCertFile)) var redisTLSCertFile: String?
    @Option(name: name(.redisTLSKeyFile), help: help(.redisTLSKeyFile)) var redisTLSKeyFile: String?
    @Option(name: name(.redisTLSServerName), help: help(.redisTLSServerName)) var redisTLSServerName: String?
    @Option(help: help(.redisSentinelUsername)) var redisSentinelUsername: String?
    @Option(help: help(.redisSentinelPassword)) var redisSentinelPassword: String?
    @Option(help: help(.redisWait)) var redisWait: String?
    @Option(help: help(.signingKeyFile)) var signingKeyFile: String?
    @Option(help: help(.signingKey)) var signingKey: String?
    @Option(help: help(.tokenTTL)) var tokenTTL: String?
    @Option(help: help(.sessionIdle)) var sessionIdle: String?
    @Option(help: help(.sessionMaxAge)) var sessionMaxAge: String?
    @Option(help: help(.clockLeeway)) var clockLeeway: String?
    @Option(help: help(.rotation)) var rotation: String?
    @Option(help: help(.usersFile)) var usersFile: String?
    @Option(help: help(.keyPrefix)) var keyPrefix: String?
    @Option(help: help(.issuer)) var issuer: String?
    @Option(help: help(.audience)) var audience: String?
    @Option(help: help(.reuseGrace)) var reuseGrace: String?
    @Option(help: help(.closeGrace)) var closeGrace: String?
    @Option(help: help(.cookie)) var cookie: String?
    @Option(help: help(.redisTimeout)) var redisTimeout: String?
    @Option(help: help(.trustedProxies)) var trustedProxies: String?
    @Option(help: help(.maxSessions)) var maxSessions: String?
    @Option(help: help(.clientTimeout)) var clientTimeout: String?
    @Option(help: help(.ipv6LimitPrefix)) var ipv6LimitPrefix: String?
    @Option(help: help(.adminListen)) var adminListen: String?
    @Option(help: help(.adminKeysFile)) var adminKeysFile: String?

    @Flag(help: "Development mode: make a throw-away signing key, and a demo user (demo / demo-password) when no users file is given.")
    var dev = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    private static func name(_ setting: Setting) -> NameSpecification {
        .customLong(String(setting.flag.dropFirst(2)))
    }

    private static func help(_ setting: Setting) -> ArgumentHelp {
        let fallback = setting.defaultValue.map { ", default \($0)" } ?? ""
        return ArgumentHelp("\(setting.help) [env: \(setting.environmentName)\(fallback)]")
    }

    private var flags: [Setting: String?] {
        [
            .listen: listen, .redisURL: redisURL, .signingKeyFile: signingKeyFile, .signingKey: signingKey, .tokenTTL: tokenTTL,
            .sessionIdle: sessionIdle, .sessionMaxAge: sessionMaxAge, .clockLeeway: clockLeeway, .rotation: rotation,
            .usersFile: usersFile, .keyPrefix: keyPrefix, .issuer: issuer, .audience: audience, .reuseGrace: reuseGrace,
            .closeGrace: closeGrace, .cookie: cookie, .redisTimeout: redisTimeout, .trustedProxies: trustedProxies,
            .maxSessions: maxSessions, .clientTimeout: clientTimeout, .ipv6LimitPrefix: ipv6LimitPrefix, .adminListen: adminListen,
            .adminKeysFile: adminKeysFile, .redisTLSCAFile: redisTLSCAFile, .redisTLSCertFile: redisTLSCertFile,
            .redisTLSKeyFile: redisTLSKeyFile, .redisTLSServerName: redisTLSServerName,
            .redisSentinelUsername: redisSentinelUsername, .redisSentinelPassword: redisSentinelPassword, .redisWait: redisWait,
        ]
    }

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level \(logLevel)") }
        var values = Environment.settings()
        for (setting, value) in flags { if let value { values[setting] = value } }
        let configuration: Configuration
        do {
            configuration = try Configuration.parse(values, dev: dev, readFile: Environment.readFile)
        } catch {
            Environment.fail(error.problems)
        }
        let logger = Environment.makeLogger(level: level)
        let users = loadUsers(configuration)
        if configuration.ephemeralKey {
            logger.warning("DEV MODE: using a throw-away signing key; tokens die with this process. Never use --dev in production.")
        }
        let parts = await TokenGateApplication.makeParts(configuration: configuration, users: users, logger: logger)
        await checkRedis(parts, logger: logger)
        let maxConnections = Environment.raiseOpenFileLimit()
        logger.info("accepting at most \(maxConnections) client connections at once (open-file limit)")
        var services: [any Service] = [ReloadService(parts: parts, configuration: configuration, logger: logger)]
        if let admin = configuration.admin {
            logger.info("service API enabled", metadata: ["keys": "\(admin.keys.names.joined(separator: ","))"])
            services.append(
                TokenGateApplication.adminApplication(parts, admin: admin, configuration: configuration, logger: logger) { channel in
                    let port = channel.localAddress?.port ?? admin.port
                    FileHandle.standardOutput.write(Data("tokengate admin listening on http://\(admin.host):\(port)\n".utf8))
                }
            )
        }
        let app = TokenGateApplication.application(
            parts,
            configuration: configuration,
            logger: logger,
            maxConnections: maxConnections,
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
            FileHandle.standardError.write(Data("tokengate: warning: no users file (\(Setting.usersFile.environmentName)); nobody can log in\n".utf8))
            return UserStore(hashes: [:])
        }
        do {
            return try UserStore(htpasswd: try Environment.readFile(path))
        } catch let error as ConfigurationError {
            Environment.fail(error.problems)
        } catch {
            Environment.fail(["\(Setting.usersFile.environmentName): cannot read \(path)"])
        }
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
