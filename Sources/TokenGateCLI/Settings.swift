import ArgumentParser
import Foundation
import Logging
import RedisClient
import TokenGate

/// Reads the environment and flags into settings, once, in the executable.
enum Environment {
    /// Raises the soft open-file limit to the hard one and returns it (at most 2^20);
    /// `ConnectionBudget` shares it between the listeners and a reserve.
    static func raiseOpenFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 256 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(min(limit.rlim_cur, 1 << 20))
    }

    /// `TOKENGATE_*` variables that are set (empty values count as unset).
    static func settings() -> [Setting: String] {
        let environment = ProcessInfo.processInfo.environment
        var values: [Setting: String] = [:]
        for setting in Setting.allCases {
            if let value = environment[setting.environmentName], !value.isEmpty { values[setting] = value }
        }
        return values
    }

    static func readFile(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8)
    }

    /// Warns on standard error about each secret file of `configuration` that every user of the
    /// machine can read or change (`SecretFiles.exposure`); at start-up and on every reload.
    static func warnAboutExposedSecrets(_ configuration: Configuration) {
        for (setting, path) in SecretFiles.paths(configuration) {
            var status = stat()
            guard stat(path, &status) == 0,
                let line = SecretFiles.exposure(of: path, mode: UInt32(status.st_mode), setting: setting)
            else { continue }
            FileHandle.standardError.write(Data("tokengate: \(line)\n".utf8))
        }
    }

    static func fail(_ lines: [String]) -> Never {
        for line in lines { FileHandle.standardError.write(Data("tokengate: \(line)\n".utf8)) }
        exit(78)  // EX_CONFIG
    }

    static func makeLogger(level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "tokengate")
        logger.logLevel = level
        return logger
    }
}

/// The Redis options of the operator commands (`sessions`, `revoke`, `doctor`).
struct RedisOptions: ParsableArguments {
    @Option(help: .setting(.redisURL)) var redisURL: String?
    @Option(help: .setting(.keyPrefix)) var keyPrefix: String?
    @Option(help: .setting(.redisTimeout)) var redisTimeout: String?

    /// The session store of the operator commands, with its client (to shut down) and key layout.
    func sessionStore() -> (any RedisClient, KeyLayout, SessionStore) {
        let (client, keys) = connect()
        return (client, keys, SessionStore(redis: client, keys: keys, logger: Logger(label: "tokengate")))
    }

    /// A Redis client and key layout from flags, then environment, then defaults, checked as
    /// `serve` checks them (a bad value exits with status 78, one line per problem).
    func connect() -> (any RedisClient, KeyLayout) {
        let values = Environment.settings().merging(Environment.givenSettings(self)) { $1 }
        do {
            let (configuration, keys) = try Configuration.parseRedis(values, connectionCount: 1)
            var logger = Logger(label: "tokengate")
            logger.logLevel = .error
            return (configuration.makeClient(logger: logger), keys)
        } catch {
            Environment.fail(error.problems)
        }
    }
}

extension Environment {
    /// The settings given as flags of `command`: each `String?` option whose property is named as
    /// a setting (`redisURL` for `--redis-url`). The `@Option` lines are the only per-setting code
    /// of a command; matching them by name here spares a second list that could miss one.
    static func givenSettings(_ command: some ParsableArguments) -> [Setting: String] {
        func squashed(_ name: some StringProtocol) -> String { name.lowercased().filter { $0 != "-" && $0 != "_" } }
        var given: [Setting: String] = [:]
        for child in Mirror(reflecting: command).children {
            guard let option = child.value as? Option<String?>, let label = child.label else { continue }
            guard let setting = Setting.allCases.first(where: { squashed($0.flag) == squashed(label) }) else {
                preconditionFailure("the option \(label) of \(type(of: command)) is named after no setting")
            }
            if let value = option.wrappedValue { given[setting] = value }
        }
        return given
    }
}

extension ArgumentHelp {
    /// A setting's help line with its variable and default, as in the README's table.
    static func setting(_ setting: Setting) -> ArgumentHelp {
        let fallback = setting.defaultValue.map { ", default \($0)" } ?? ""
        return ArgumentHelp("\(setting.help) [env: \(setting.environmentName)\(fallback)]")
    }
}

extension NameSpecification {
    /// A setting's flag, where argument-parser would spell the property's name differently
    /// (it runs "TLSCA" together).
    static func setting(_ setting: Setting) -> NameSpecification {
        .customLong(String(setting.flag.dropFirst(2)))
    }
}

/// Validates a user id argument (`sessions`, `revoke`): any id, exactly as given (README "User ids").
func userID(_ raw: String) throws -> String {
    guard UserID.isValid(raw) else {
        throw ValidationError("user must be 1-\(UserID.maxBytes) bytes of UTF-8 without control characters, exactly as its sessions were started")
    }
    return raw
}

/// Validates a username argument.
func canonicalUser(_ raw: String) throws -> String {
    guard let name = Username.canonical(raw) else {
        throw ValidationError("username must be 1-64 characters of a-z 0-9 . _ @ - (case-insensitive)")
    }
    return name
}
