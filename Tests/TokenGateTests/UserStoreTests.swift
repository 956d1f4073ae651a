import Testing

@testable import TokenGate

// Serialized: its timing tests must not share NIO's thread pool with each other's bcrypt checks.
@Suite("users file", .serialized)
struct UserStoreTests {
    @Test("bcrypt lines verify, names are case-insensitive, Apache's $2y$ works")
    func verify() async throws {
        let line = UserStore.htpasswdLine(username: "alice", password: "correct horse", cost: 4)
        let apache = UserStore.htpasswdLine(username: "bob", password: "battery", cost: 4).replacingOccurrences("$2b$", "$2y$")
        let store = try UserStore(htpasswd: "# comment\n\(line)\nBOB:\(apache.dropFirst(4))\n")
        #expect(store.usernames == ["alice", "bob"])
        #expect(await store.verify(username: "alice", password: "correct horse"))
        #expect(await store.verify(username: "bob", password: "battery"))
        #expect(!(await store.verify(username: "alice", password: "wrong")))
        #expect(!(await store.verify(username: "carol", password: "correct horse")))
    }

    @Test("an unknown user costs a bcrypt check of the same cost as a wrong password (no timing oracle)")
    func sameCost() async throws {
        let store = try UserStore(htpasswd: UserStore.htpasswdLine(username: "alice", password: "correct horse", cost: 9))
        var unknown: [Duration] = []
        var wrong: [Duration] = []
        // Interleaved, so machine load hits both alike; medians, so a stray pause does not count.
        for _ in 0..<9 {
            let clock = ContinuousClock()
            unknown.append(await clock.measure { _ = await store.verify(username: "mallory", password: "correct horse") })
            wrong.append(await clock.measure { _ = await store.verify(username: "alice", password: "wrong horse") })
        }
        let medians = (unknown.sorted()[4], wrong.sorted()[4])
        // bcrypt cost 9 takes tens of milliseconds; skipping it for unknown users would take microseconds.
        let ratio = medians.0 / medians.1
        #expect(ratio > 0.5 && ratio < 2, "unknown \(medians.0), wrong password \(medians.1)")
    }

    @Test("with mixed bcrypt costs an unknown user costs as much as the file's most expensive user")
    func mixedCosts() async throws {
        // Nine cheap users and one expensive one: whichever comes first in the table, the dummy hash
        // must take the highest cost.
        let cheap = (1...9).map { UserStore.htpasswdLine(username: "user\($0)", password: "pw", cost: 4) }
        let store = try UserStore(
            htpasswd: (cheap + [UserStore.htpasswdLine(username: "admin", password: "correct horse", cost: 9)]).joined(separator: "\n")
        )
        var unknown: [Duration] = []
        var wrong: [Duration] = []
        for _ in 0..<9 {
            let clock = ContinuousClock()
            unknown.append(await clock.measure { _ = await store.verify(username: "mallory", password: "correct horse") })
            wrong.append(await clock.measure { _ = await store.verify(username: "admin", password: "wrong horse") })
        }
        // Cost 4 is 32 times cheaper than cost 9.
        let ratio = unknown.sorted()[4] / wrong.sorted()[4]
        #expect(ratio > 0.5 && ratio < 2, "unknown \(unknown.sorted()[4]), wrong password of the cost-9 user \(wrong.sorted()[4])")
    }

    @Test("with mixed bcrypt costs a wrong password of any user takes as long as an unknown name")
    func mixedCostsWrongPasswords() async throws {
        // htpasswd -nbB writes cost 5, `tokengate user add` 12: mixed files are the normal case.
        let store = try UserStore(
            htpasswd: [
                UserStore.htpasswdLine(username: "four", password: "pw4", cost: 4),
                UserStore.htpasswdLine(username: "five", password: "pw5", cost: 5),
                UserStore.htpasswdLine(username: "ten", password: "pw10", cost: 10),
            ].joined(separator: "\n")
        )
        #expect(store.costCounts == [4: 1, 5: 1, 10: 1])
        let names = ["four", "five", "ten", "mallory"]
        var times: [String: [Duration]] = [:]
        // Interleaved, so machine load hits all alike; medians, so a stray pause does not count.
        for _ in 0..<7 {
            for name in names {
                let clock = ContinuousClock()
                times[name, default: []].append(await clock.measure { #expect(!(await store.verify(username: name, password: "wrong"))) })
            }
        }
        let medians = times.mapValues { $0.sorted()[3] }
        let unknown = try #require(medians["mallory"])
        for name in ["four", "five", "ten"] {
            // Unpadded, a cost-4 failure would take 1/64 of the unknown name's time.
            let ratio = try #require(medians[name]) / unknown
            #expect(ratio > 0.5 && ratio < 2, "wrong password of \(name): \(medians[name] ?? .zero), unknown name: \(unknown)")
        }
        // A right password is still checked at its own cost, and matches.
        #expect(await store.verify(username: "four", password: "pw4"))
    }

    @Test("passwords over 72 bytes never match (bcrypt would silently truncate them)")
    func longPasswords() async throws {
        let long = String(repeating: "p", count: 72)
        let store = try UserStore(htpasswd: UserStore.htpasswdLine(username: "alice", password: long, cost: 4))
        #expect(await store.verify(username: "alice", password: long))
        #expect(!(await store.verify(username: "alice", password: long + "extra")))
    }

    @Test(
        "bad lines are refused with their line numbers",
        arguments: [
            "alice:{SHA}abc", "alice", "bad name:$2b$04$abcdefghijklmnopqrstuuAbcdefghijklmnopqrstuvwxyz01234",
        ]
    )
    func refused(text: String) {
        #expect(throws: ConfigurationError.self) { try UserStore(htpasswd: text) }
    }

    @Test("two names differing only by case are refused")
    func duplicates() {
        let line = UserStore.htpasswdLine(username: "alice", password: "x", cost: 4)
        #expect(throws: ConfigurationError.self) { try UserStore(htpasswd: line + "\nA" + line.dropFirst()) }
    }
}

extension String {
    fileprivate func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
