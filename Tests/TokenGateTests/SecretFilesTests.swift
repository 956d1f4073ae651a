import Testing

@testable import TokenGate

/// The one loader of the secret files: what start-up and `SIGHUP` read, and the lines they refuse with.
@Suite("secret files")
struct SecretFilesTests {
    static let key = "k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y"
    static let user = UserStore.htpasswdLine(username: "alice", password: "correct horse", cost: 4)
    static let serviceKey = ServiceKeys.generate(name: "app").line

    struct Missing: Error {}

    /// Files by path; any other path cannot be read.
    private static func files(_ files: [String: String]) -> (String) throws -> String {
        { path in
            guard let text = files[path] else { throw Missing() }
            return text
        }
    }

    private static func problems(_ load: () throws(ConfigurationError) -> Void) -> [String] {
        do {
            try load()
            return []
        } catch {
            return error.problems
        }
    }

    @Test("each file is read and parsed; a missing or bad one is one line naming its setting and never its secret")
    func eachFile() throws {
        let read = Self.files(["/key": Self.key + "\n", "/users": Self.user + "\n", "/service": Self.serviceKey + "\n", "/bad": "x:y\n"])
        #expect(try SecretFiles.signingKeys("/key", readFile: read).map(\.secret) == [Array(Self.key.utf8)])
        #expect(try SecretFiles.users("/users", readFile: read).usernames == ["alice"])
        #expect(try SecretFiles.serviceKeys("/service", readFile: read).names == ["app"])
        #expect(
            Self.problems { () throws(ConfigurationError) in _ = try SecretFiles.signingKeys("/nope", readFile: read) } == [
                "TOKENGATE_SIGNING_KEY_FILE: cannot read /nope"
            ]
        )
        #expect(
            Self.problems { () throws(ConfigurationError) in _ = try SecretFiles.users("/nope", readFile: read) } == [
                "TOKENGATE_USERS_FILE: cannot read /nope"
            ]
        )
        #expect(
            Self.problems { () throws(ConfigurationError) in _ = try SecretFiles.serviceKeys("/nope", readFile: read) } == [
                "TOKENGATE_ADMIN_KEYS_FILE: cannot read /nope"
            ]
        )
        let badKey = Self.problems { () throws(ConfigurationError) in _ = try SecretFiles.signingKeys("/bad", readFile: read) }
        #expect(badKey.count == 1 && badKey[0].hasPrefix("TOKENGATE_SIGNING_KEY_FILE: ") && !badKey[0].contains("x:y"), "\(badKey)")
        let badUsers = Self.problems { () throws(ConfigurationError) in _ = try SecretFiles.users("/bad", readFile: read) }
        #expect(!badUsers.isEmpty && badUsers.allSatisfy { $0.hasPrefix("TOKENGATE_USERS_FILE: users file line 1:") }, "\(badUsers)")
        let badService = Self.problems { () throws(ConfigurationError) in _ = try SecretFiles.serviceKeys("/bad", readFile: read) }
        #expect(
            !badService.isEmpty && badService.allSatisfy { $0.hasPrefix("TOKENGATE_ADMIN_KEYS_FILE: service keys file line 1:") },
            "\(badService)"
        )
    }

    @Test("a reload reads every file the configuration names, refuses with every bad one's lines, and start-up says the same")
    func reload() throws {
        var files = ["/key": Self.key + "\n", "/users": Self.user + "\n", "/service": Self.serviceKey + "\n"]
        let values: [Setting: String] = [.signingKeyFile: "/key", .usersFile: "/users", .adminListen: "127.0.0.1:0", .adminKeysFile: "/service"]
        let configuration = try Configuration.parse(values, readFile: Self.files(files))
        let loaded = try SecretFiles.reload(configuration, readFile: Self.files(files))
        #expect(loaded.signingKeys?.count == 1 && loaded.users?.usernames == ["alice"] && loaded.serviceKeys?.names == ["app"])
        // An inline key and no users file or service API: nothing to read.
        let inline = try Configuration.parse([.signingKey: Self.key], readFile: Self.files([:]))
        let none = try SecretFiles.reload(inline, readFile: Self.files([:]))
        #expect(none.signingKeys == nil && none.users == nil && none.serviceKeys == nil)
        // Two bad files: both named in one refusal.
        files["/key"] = nil
        files["/service"] = "nonsense\n"
        let refused = Self.problems { () throws(ConfigurationError) in _ = try SecretFiles.reload(configuration, readFile: Self.files(files)) }
        #expect(refused.count == 2 && refused[0] == "TOKENGATE_SIGNING_KEY_FILE: cannot read /key", "\(refused)")
        #expect(refused.count == 2 && refused[1].hasPrefix("TOKENGATE_ADMIN_KEYS_FILE: "), "\(refused)")
        // Start-up refuses the same files with the same lines.
        let atStart = Self.problems { () throws(ConfigurationError) in _ = try Configuration.parse(values, readFile: Self.files(files)) }
        #expect(atStart == refused, "\(atStart) vs \(refused)")
    }

    @Test("a secret file every user of the machine can read or change gets one warning naming its setting; 600, 640 and 440 get none")
    func exposure() {
        #expect(SecretFiles.exposure(of: "/k", mode: 0o100600, setting: .signingKeyFile) == nil)
        #expect(SecretFiles.exposure(of: "/k", mode: 0o100640, setting: .signingKeyFile) == nil)
        #expect(SecretFiles.exposure(of: "/k", mode: 0o100440, setting: .usersFile) == nil)
        #expect(
            SecretFiles.exposure(of: "/k", mode: 0o100644, setting: .signingKeyFile)
                == "TOKENGATE_SIGNING_KEY_FILE: warning: every user of this machine can read /k (mode 0644); chmod 600 it (640 with a group the service runs in)"
        )
        let writable = SecretFiles.exposure(of: "/u", mode: 0o100662, setting: .usersFile)
        #expect(writable?.hasPrefix("TOKENGATE_USERS_FILE: warning: every user of this machine can change /u (mode 0662)") == true)
    }
}
