import Logging
import ServiceLifecycle
import TokenGate
import TokenGateHTTP
import UnixSignals

/// Reloads the signing-key file, the users file and the service API's keys file on `SIGHUP`
/// (README, "Reloading without a restart"): all are read and parsed first, and only when all are good do they go into
/// force, together. A bad file is
/// refused with one log line and the files loaded before stay in force; requests in flight are not
/// affected. A key given inline (`TOKENGATE_SIGNING_KEY`) or made by `--dev` stays as it is.
struct ReloadService: Service {
    let parts: TokenGateApplication.Parts
    let configuration: Configuration
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            await reload()
        }
    }

    func reload() async {
        let auth = parts.auth
        let keys: [SigningKey]
        let users: UserStore
        let serviceKeys: ServiceKeys?
        do {
            keys = try configuration.signingKeyFile.map(Self.readKeys) ?? auth.signingKeys
            users = try configuration.usersFile.map(Self.readUsers) ?? auth.users
            if let admin = configuration.admin { serviceKeys = try Self.readServiceKeys(admin.keysFile) } else { serviceKeys = nil }
        } catch {
            parts.metrics.countReloadFailure()
            logger.error(
                "reload refused; the signing keys and users loaded before stay in force",
                metadata: ["problem": "\(error.problem)", "generation": "\(auth.generation)"]
            )
            return
        }
        let generation = auth.reload(signingKeys: keys, users: users, serviceKeys: serviceKeys)
        var metadata: Logger.Metadata = [
            "generation": "\(generation)", "signing_kid": "\(keys[0].kid)", "keys": "\(keys.count)", "users": "\(users.usernames.count)",
        ]
        if let serviceKeys { metadata["service_keys"] = "\(serviceKeys.names.joined(separator: ","))" }
        logger.info("reloaded the signing keys and users", metadata: metadata)
    }

    struct Failure: Error {
        let problem: String
    }

    private static func readKeys(_ path: String) throws(Failure) -> [SigningKey] {
        let text: String
        do { text = try Environment.readFile(path) } catch {
            throw Failure(problem: "\(Setting.signingKeyFile.environmentName): cannot read \(path)")
        }
        do { return try SigningKey.parseList(text) } catch { throw Failure(problem: "signing key: \(error.message)") }
    }

    private static func readServiceKeys(_ path: String) throws(Failure) -> ServiceKeys {
        let text: String
        do { text = try Environment.readFile(path) } catch { throw Failure(problem: "\(Setting.adminKeysFile.environmentName): cannot read \(path)") }
        do { return try ServiceKeys(parsing: text) } catch {
            throw Failure(problem: "\(Setting.adminKeysFile.environmentName): " + error.problems.joined(separator: "; "))
        }
    }

    private static func readUsers(_ path: String) throws(Failure) -> UserStore {
        let text: String
        do { text = try Environment.readFile(path) } catch { throw Failure(problem: "\(Setting.usersFile.environmentName): cannot read \(path)") }
        do { return try UserStore(htpasswd: text) } catch { throw Failure(problem: error.problems.joined(separator: "; ")) }
    }
}
