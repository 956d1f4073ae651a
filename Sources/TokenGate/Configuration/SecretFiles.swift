/// The secret files, read and parsed in one place, at start-up and again on `SIGHUP`: the signing
/// keys (`TOKENGATE_SIGNING_KEY_FILE`), the users (`TOKENGATE_USERS_FILE`) and the service API's
/// keys (`TOKENGATE_ADMIN_KEYS_FILE`). Every problem is one line that starts with the setting's
/// name and never shows a secret.
/// `readFile` reads a file's text (injected for tests).
public enum SecretFiles {
    /// The signing keys in the file at `path`: the first signs, every one verifies.
    public static func signingKeys(_ path: String, readFile: (String) throws -> String) throws(ConfigurationError) -> [SigningKey] {
        let text = try read(path, .signingKeyFile, readFile)
        do { return try SigningKey.parseList(text) } catch {
            // Never the key itself: the message says what is wrong with it.
            throw ConfigurationError(["\(Setting.signingKeyFile.environmentName): \(error.message)"])
        }
    }

    /// The users in the htpasswd file at `path`.
    public static func users(_ path: String, readFile: (String) throws -> String) throws(ConfigurationError) -> UserStore {
        let text = try read(path, .usersFile, readFile)
        do { return try UserStore(htpasswd: text) } catch { throw Self.named(.usersFile, error) }
    }

    /// The service API's keys in the file at `path`.
    public static func serviceKeys(_ path: String, readFile: (String) throws -> String) throws(ConfigurationError) -> ServiceKeys {
        let text = try read(path, .adminKeysFile, readFile)
        do { return try ServiceKeys(parsing: text) } catch { throw Self.named(.adminKeysFile, error) }
    }

    /// Every file `configuration` names, read again (`SIGHUP`): nil for what comes from no file
    /// (an inline or `--dev` key, no users file, no service API). All are read before any is used,
    /// so one bad file refuses the whole reload.
    public static func reload(
        _ configuration: Configuration,
        readFile: (String) throws -> String
    ) throws(ConfigurationError) -> (signingKeys: [SigningKey]?, users: UserStore?, serviceKeys: ServiceKeys?) {
        var problems: [String] = []
        func attempt<T>(_ load: () throws(ConfigurationError) -> T) -> T? {
            do { return try load() } catch {
                problems += error.problems
                return nil
            }
        }
        let keys = configuration.signingKeyFile.flatMap { path in
            attempt { () throws(ConfigurationError) in try signingKeys(path, readFile: readFile) }
        }
        let users = configuration.usersFile.flatMap { path in attempt { () throws(ConfigurationError) in try Self.users(path, readFile: readFile) } }
        let service = configuration.admin.flatMap { admin in
            attempt { () throws(ConfigurationError) in try serviceKeys(admin.keysFile, readFile: readFile) }
        }
        if !problems.isEmpty { throw ConfigurationError(problems) }
        return (keys, users, service)
    }

    /// The secret files `configuration` reads, each with its setting: the signing keys, the users
    /// and the service API's keys (those that are set).
    public static func paths(_ configuration: Configuration) -> [(setting: Setting, path: String)] {
        var paths: [(setting: Setting, path: String)] = []
        if let path = configuration.signingKeyFile { paths.append((.signingKeyFile, path)) }
        if let path = configuration.usersFile { paths.append((.usersFile, path)) }
        if let admin = configuration.admin { paths.append((.adminKeysFile, admin.keysFile)) }
        return paths
    }

    /// The warning for a secret file that every user of the machine may read or write (`mode`: its
    /// permission bits), or nil. A warning and not a refusal: Kubernetes and Docker mount secrets
    /// with modes of their own, and the service's user is not always the files' owner.
    public static func exposure(of path: String, mode: UInt32, setting: Setting) -> String? {
        guard mode & 0o006 != 0 else { return nil }
        let octal = String(mode & 0o777, radix: 8)
        let access = mode & 0o002 != 0 ? "change" : "read"
        return "\(setting.environmentName): warning: every user of this machine can \(access) \(path) (mode 0\(octal)); "
            + "chmod 600 it (640 with a group the service runs in)"
    }

    private static func read(_ path: String, _ setting: Setting, _ readFile: (String) throws -> String) throws(ConfigurationError) -> String {
        do { return try readFile(path) } catch { throw ConfigurationError(["\(setting.environmentName): cannot read \(path)"]) }
    }

    /// The file's problems, each starting with the setting's name.
    private static func named(_ setting: Setting, _ error: ConfigurationError) -> ConfigurationError {
        ConfigurationError(error.problems.map { "\(setting.environmentName): \($0)" })
    }
}
