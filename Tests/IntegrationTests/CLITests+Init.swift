import Foundation
import Testing
import TokenGate

extension CLITests {
    @Test("init writes the missing secrets once (demo login printed once), keeps existing files, rebuilds service-keys from the app's key")
    func initWritesOnlyWhatIsMissing() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tg-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let dir = directory.path
        let appKey = dir + "/app.key"
        let command = ["init", "--dir", dir, "--app-key-file", appKey, "--cost", "4"]
        func mode(_ path: String) throws -> Int? { try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int }
        func read(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

        let first = try Subprocess.run(command)
        #expect(first.status == 0, "\(first.stderr)")
        let demo = first.stdout.split(separator: "\n").filter { $0.hasPrefix("demo login: user=demo password=") }
        #expect(demo.count == 1, "\(first.stdout)")
        let password = String(demo.first?.split(separator: "=").last ?? "")
        #expect(password.count >= 24)
        let users = try read(dir + "/users.htpasswd")
        #expect(users.hasPrefix("demo:$2b$04$") && !users.contains(password))
        let signingKey = try read(dir + "/signing.key").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(signingKey.count == 64)
        let secret = try read(appKey).trimmingCharacters(in: .whitespacesAndNewlines)
        let keys = try ServiceKeys(parsing: try read(dir + "/service-keys"))
        #expect(keys.names == ["sample-app"] && keys.name(of: Array(secret.utf8)) == "sample-app")
        for file in ["signing.key", "users.htpasswd", "service-keys"] { #expect(try mode(dir + "/" + file) == 0o600, "\(file)") }
        #expect(try mode(appKey) == 0o644)

        // Again: nothing changes, no password is printed.
        let files = ["/signing.key", "/users.htpasswd", "/service-keys"].map { dir + $0 } + [appKey]
        let before = try files.map(read)
        let second = try Subprocess.run(command)
        #expect(second.status == 0 && !second.stdout.contains("demo login"), "\(second.stdout)\(second.stderr)")
        #expect(try files.map(read) == before)

        // service-keys lost, the app's key kept: rebuilt from it.
        try FileManager.default.removeItem(atPath: dir + "/service-keys")
        #expect(try Subprocess.run(command).status == 0)
        #expect(try ServiceKeys(parsing: try read(dir + "/service-keys")).name(of: Array(secret.utf8)) == "sample-app")
        #expect(try read(appKey) == before[3])

        // The app's key lost while service-keys names it: refused, nothing written.
        try FileManager.default.removeItem(atPath: appKey)
        let lost = try Subprocess.run(command)
        #expect(lost.status != 0 && lost.stderr.contains("has a key named sample-app"), "\(lost.stderr)")
        #expect(!FileManager.default.fileExists(atPath: appKey))

        #expect(try Subprocess.run(["init", "--dir", dir + "/missing"]).status != 0)
    }
}
