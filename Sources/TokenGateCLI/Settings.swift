import ArgumentParser
import Foundation
import Logging
import RedisClient
import TokenGate

/// Reads the environment and flags into settings, once, in the executable.
enum Environment {
    /// Raises the soft open-file limit to the hard one and returns how many client connections
    /// fit under it, keeping a quarter of it (at least 48, at most 128) for Redis, files and the
    /// runtime: running out of descriptors would crash the process, not just refuse a client.
    static func raiseOpenFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 256 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let usable = Int(min(limit.rlim_cur, 1 << 20))
        let reserve = max(48, min(128, usable / 4))
        return max(16, usable - reserve)
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
    @Option(name: .customLong("redis-url"), help: ArgumentHelp("\(Setting.redisURL.help) [env: \(Setting.redisURL.environmentName)]"))
    var redisURL: String?

    @Option(name: .customLong("key-prefix"), help: ArgumentHelp("\(Setting.keyPrefix.help) [env: \(Setting.keyPrefix.environmentName)]"))
    var keyPrefix: String?

    @Option(name: .customLong("redis-timeout"), help: ArgumentHelp("\(Setting.redisTimeout.help) [env: \(Setting.redisTimeout.environmentName)]"))
    var redisTimeout: String?

    /// The session store of the operator commands, with its client (to shut down) and key layout.
    func sessionStore() -> (any RedisClient, KeyLayout, SessionStore) {
        let (client, keys) = connect()
        return (client, keys, SessionStore(redis: client, keys: keys, logger: Logger(label: "tokengate")))
    }

    /// A Redis client and key layout from flags, then environment, then defaults.
    func connect() -> (any RedisClient, KeyLayout) {
        let environment = Environment.settings()
        let url = redisURL ?? environment[.redisURL] ?? Setting.redisURL.defaultValue ?? ""
        let prefix = keyPrefix ?? environment[.keyPrefix] ?? Setting.keyPrefix.defaultValue ?? "tg:"
        let timeoutText = redisTimeout ?? environment[.redisTimeout] ?? Setting.redisTimeout.defaultValue ?? "1"
        guard let seconds = Double(timeoutText), seconds > 0, seconds <= 60 else {
            Environment.fail(["\(Setting.redisTimeout.environmentName): must be seconds greater than 0 and at most 60"])
        }
        do {
            var configuration = try RedisConfiguration(url: url, timeout: .milliseconds(Int(seconds * 1000)), connectionCount: 1)
            configuration.sentinelUsername = environment[.redisSentinelUsername]
            configuration.sentinelPassword = environment[.redisSentinelPassword]
            var logger = Logger(label: "tokengate")
            logger.logLevel = .error
            return (configuration.makeClient(logger: logger), KeyLayout(prefix: prefix))
        } catch {
            Environment.fail(["\(Setting.redisURL.environmentName): \(error)"])
        }
    }
}

/// Validates a username argument.
func canonicalUser(_ raw: String) throws -> String {
    guard let name = Username.canonical(raw) else {
        throw ValidationError("username must be 1-64 characters of a-z 0-9 . _ @ - (case-insensitive)")
    }
    return name
}
