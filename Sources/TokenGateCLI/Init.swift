import ArgumentParser
import Foundation
import TokenGate

/// `tokengate init --dir DIR`: the secrets a first start needs, written only where they are missing.
struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the secrets a first start needs, only those that are missing: a signing key, a users file, a service API key.",
        discussion: """
            In DIR: signing.key (one HS256 key, as `key generate` prints it), users.htpasswd (one user, --demo-user, \
            with a random password) and service-keys (the hash of the app's key, as `admin-key generate` writes it); \
            with --app-key-file, the app's key itself goes there (mode 0644: the app runs as another user, so keep that \
            file in a place only the app can see, such as a volume of its own). A file that exists is never changed or \
            replaced, so running it again, or on secrets of your own, changes nothing. The new files are mode 0600, \
            owned by the user that runs this (in the image: 10001, the same user as `serve`). \
            When it makes the users file it prints, once, the line `demo login: user=NAME password=PASSWORD` \
            (docker-compose.yml runs this as its `init` service: `docker compose logs init`).
            """
    )

    @Option(help: "The directory for signing.key, users.htpasswd and service-keys (it must exist).") var dir: String
    @Option(help: "The user that users.htpasswd is made with.") var demoUser = "demo"
    @Option(help: "Where the app's service API key goes (none: no key for an app).") var appKeyFile: String?
    @Option(help: "The app key's name in service-keys.") var appKeyName = "sample-app"
    @Option(help: "bcrypt cost of the demo user's password (4-31).") var cost: UInt8 = 12

    func run() throws {
        let user = try canonicalUser(demoUser)
        guard ServiceKeys.isValidName(appKeyName) else { throw ValidationError("the app key's name must be 1-64 of A-Z a-z 0-9 . _ -") }
        guard (4...31).contains(cost) else { throw ValidationError("cost must be 4-31") }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("\(dir) is not a directory")
        }
        let signingKeyPath = dir + "/signing.key"
        let usersPath = dir + "/users.htpasswd"
        let keysPath = dir + "/service-keys"

        // HS256 is always known: generateLine returns nil only for an unknown algorithm.
        if try createNew(signingKeyPath, (SigningKey.generateLine(algorithm: "HS256") ?? "") + "\n", mode: 0o600) {
            report("wrote \(signingKeyPath) (HS256)")
        } else {
            report("kept \(signingKeyPath)")
        }

        var generator = SystemRandomNumberGenerator()
        let password = Base64URL.encode((0..<18).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        // bcrypt only when the file is missing; O_EXCL still decides.
        if !FileManager.default.fileExists(atPath: usersPath),
            try createNew(usersPath, UserStore.htpasswdLine(username: user, password: password, cost: cost) + "\n", mode: 0o600)
        {
            report("wrote \(usersPath) with one user, \(user)")
            print("demo login: user=\(user) password=\(password)")
        } else {
            report("kept \(usersPath)")
        }

        try writeServiceKeys(keysPath)
    }

    /// service-keys and the app's key: the hash of the app's key must be in service-keys.
    private func writeServiceKeys(_ keysPath: String) throws {
        guard let appKeyFile else {
            report(try createNew(keysPath, "", mode: 0o600) ? "wrote \(keysPath) (empty: no app key)" : "kept \(keysPath)")
            return
        }
        let existingKeys = FileManager.default.fileExists(atPath: keysPath) ? try read(keysPath) : nil
        var keys: ServiceKeys? = nil
        if let existingKeys {
            do { keys = try ServiceKeys(parsing: existingKeys) } catch {
                throw ValidationError("\(keysPath) is not a keys file: \(error.problems.joined(separator: "; "))")
            }
        }
        if FileManager.default.fileExists(atPath: appKeyFile) {
            guard keys == nil else {
                report("kept \(appKeyFile) and \(keysPath)")
                return
            }
            // The app's key came first (given by hand): service-keys is made from it.
            let secret = try read(appKeyFile).trimmingCharacters(in: .whitespacesAndNewlines)
            _ = try createNew(keysPath, ServiceKeys.line(name: appKeyName, secret: secret) + "\n", mode: 0o600)
            report("kept \(appKeyFile); wrote \(keysPath) with its hash as \(appKeyName)")
            return
        }
        if let keys, keys.names.contains(appKeyName) {
            throw ValidationError(
                "\(keysPath) has a key named \(appKeyName) but \(appKeyFile) is missing: give the app its key, or delete that line"
            )
        }
        let key = ServiceKeys.generate(name: appKeyName)
        guard try createNew(appKeyFile, key.secret + "\n", mode: 0o644) else { throw ValidationError("\(appKeyFile) appeared meanwhile") }
        var text = existingKeys ?? ""
        if !text.isEmpty, !text.hasSuffix("\n") { text += "\n" }
        text += key.line + "\n"
        if existingKeys == nil {
            guard try createNew(keysPath, text, mode: 0o600) else { throw ValidationError("\(keysPath) appeared meanwhile") }
        } else {
            // Adds a line: the lines already there stay as they are.
            guard FileManager.default.createFile(atPath: keysPath, contents: Data(text.utf8)) else {
                throw ValidationError("cannot write \(keysPath)")
            }
        }
        report("wrote \(appKeyFile) and its hash to \(keysPath) as \(appKeyName)")
    }

    private func read(_ path: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read \(path)") }
        return text
    }

    private func report(_ line: String) {
        print("init: \(line)")
    }
}

/// Creates `path` with `text` unless it exists (`O_EXCL`: never replaces a file, even one made
/// meanwhile). Returns false when it exists.
private func createNew(_ path: String, _ text: String, mode: mode_t) throws -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    if fd < 0 {
        if errno == EEXIST { return false }
        throw ValidationError("cannot create \(path): \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
        let count = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if count < 0, errno == EINTR { continue }
        guard count > 0 else {
            unlink(path)
            throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        written += count
    }
    guard fsync(fd) == 0 else { throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))") }
    return true
}
