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
/// The files are read by the loader start-up uses (`SecretFiles`), with the same messages.
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
        let files: (signingKeys: [SigningKey]?, users: UserStore?, serviceKeys: ServiceKeys?)
        do {
            files = try SecretFiles.reload(configuration, readFile: Environment.readFile)
        } catch {
            parts.metrics.countReloadFailure()
            logger.error(
                "reload refused; the signing keys and users loaded before stay in force",
                metadata: ["problem": "\(error.problems.joined(separator: "; "))", "generation": "\(auth.generation)"]
            )
            return
        }
        Environment.warnAboutExposedSecrets(configuration)
        let keys = files.signingKeys ?? auth.signingKeys
        let users = files.users ?? auth.users
        let generation = auth.reload(signingKeys: keys, users: users, serviceKeys: files.serviceKeys)
        var metadata: Logger.Metadata = [
            "generation": "\(generation)", "signing_kid": "\(keys[0].kid)", "keys": "\(keys.count)", "users": "\(users.usernames.count)",
        ]
        if let serviceKeys = files.serviceKeys { metadata["service_keys"] = "\(serviceKeys.names.joined(separator: ","))" }
        logger.info("reloaded the signing keys and users", metadata: metadata)
    }
}
