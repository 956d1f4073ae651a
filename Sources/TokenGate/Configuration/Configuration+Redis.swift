public import RedisClient

extension Configuration {
    /// The Redis connection and key layout alone, for the operator commands (`sessions`, `revoke`,
    /// `doctor`): the same settings as `serve`'s (URL, timeout, TLS, sentinel credentials, key
    /// prefix), read and checked by the same code.
    ///
    /// - Parameters:
    ///   - values: raw values by setting (flags merged over the environment); others are ignored.
    ///   - connectionCount: connections per node.
    /// - Throws: one line per problem, each naming its setting.
    public static func parseRedis(
        _ values: [Setting: String],
        connectionCount: Int
    ) throws(ConfigurationError) -> (redis: RedisConfiguration, keys: KeyLayout) {
        var read = SettingReader(values)
        var redis = readRedis(&read)
        redis.connectionCount = connectionCount
        let keys = read(.keyPrefix)
        if !read.problems.isEmpty { throw ConfigurationError(read.problems) }
        return (redis, keys)
    }

    /// The URL with the timeout, the TLS settings (`rediss://` only) and the sentinel credentials
    /// (`redis+sentinel://` only).
    static func readRedis(_ read: inout SettingReader) -> RedisConfiguration {
        var redis = read(.redisURL)
        redis.timeout = read(.redisTimeout)

        let sentinelSettings = [Setting.redisSentinelUsername, .redisSentinelPassword]
        let (sentinelUsername, sentinelPassword) = (read(.redisSentinelUsername), read(.redisSentinelPassword))
        if case .sentinel = redis.endpoint {
            redis.sentinelUsername = sentinelUsername
            redis.sentinelPassword = sentinelPassword
        } else if read.accepted(.redisURL), let given = sentinelSettings.first(where: read.isGiven) {
            read.refuse(given, "sentinel credentials need a redis+sentinel:// URL in \(Setting.redisURL.environmentName)")
        }

        // TLS: the files are read here, so a bad one stops start-up instead of failing every connect.
        let tlsSettings = [Setting.redisTLSCAFile, .redisTLSCertFile, .redisTLSKeyFile, .redisTLSServerName]
        let files = RedisConfiguration.TLS(
            caFile: read(.redisTLSCAFile),
            certificateFile: read(.redisTLSCertFile),
            keyFile: read(.redisTLSKeyFile),
            serverName: read(.redisTLSServerName)
        )
        if redis.tls != nil {
            redis.tls = files
            do { _ = try files.makeContext() } catch {
                let setting: Setting =
                    switch error.setting {
                    case .caFile: .redisTLSCAFile
                    case .certificateFile: .redisTLSCertFile
                    case .keyFile: .redisTLSKeyFile
                    }
                read.refuse(setting, error.reason)
            }
        } else if read.accepted(.redisURL), let given = tlsSettings.first(where: read.isGiven) {
            read.refuse(given, "TLS settings need a rediss:// URL in \(Setting.redisURL.environmentName)")
        }
        return redis
    }
}

extension Duration {
    /// Whole milliseconds (rounded down).
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
