import Logging
import RedisClient
import Testing
import TokenGate
import TokenGateHTTP

/// The failed-login limits under parallel logins (README, "Failed-login limits"): correct passwords are never
/// refused for failures that did not happen, and parallel guesses never check more passwords than
/// the limit allows.
@Suite("login limits under concurrency")
struct LoginLimitTests {
    private static func service(_ tweak: (inout Configuration) -> Void = { _ in }) async throws -> TokenGateApplication.Parts {
        var configuration = try testConfiguration([:])
        tweak(&configuration)
        var logger = Logger(label: "test.limits")
        logger.logLevel = .critical
        return await TokenGateApplication.makeParts(configuration: configuration, users: TestUsers.store, logger: logger)
    }

    private enum Outcome: Hashable { case ok, wrong, limited, other }

    private static func outcomes(_ count: Int, _ auth: AuthService, password: String, address: String) async -> [Outcome: Int] {
        await withTaskGroup(of: Outcome.self) { group in
            for _ in 0..<count {
                group.addTask {
                    do {
                        _ = try await auth.login(username: "alice", password: password, userAgent: "", address: address)
                        return .ok
                    } catch let error as TokenGateError {
                        switch error.code {
                        case .invalidCredentials: return .wrong
                        case .rateLimited: return .limited
                        default: return .other
                        }
                    } catch {
                        return .other
                    }
                }
            }
            return await group.reduce(into: [:]) { $0[$1, default: 0] += 1 }
        }
    }

    @Test("200 parallel logins with the right password from one address all succeed")
    func parallelCorrectLogins() async throws {
        let parts = try await Self.service()
        let counts = await Self.outcomes(200, parts.auth, password: "alice-password", address: "192.0.2.1")
        #expect(counts == [.ok: 200], "\(counts)")
        parts.redis.shutdown()
    }

    @Test("200 parallel guesses check at most the limit's passwords; then the right one is refused there, not elsewhere")
    func parallelGuesses() async throws {
        let parts = try await Self.service()
        let limit = parts.auth.configuration.maxFailedLoginsPerUserAndAddress
        let counts = await Self.outcomes(200, parts.auth, password: "wrong", address: "192.0.2.2")
        #expect(counts == [.wrong: limit, .limited: 200 - limit], "\(counts)")
        await #expect(throws: TokenGateError.self) {
            _ = try await parts.auth.login(username: "alice", password: "alice-password", userAgent: "", address: "192.0.2.2")
        }
        _ = try await parts.auth.login(username: "alice", password: "alice-password", userAgent: "", address: "192.0.2.3")
        parts.redis.shutdown()
    }

    @Test("guesses from many addresses reach the looser per-user limit")
    func perUserLimit() async throws {
        let parts = try await Self.service { $0.maxFailedLoginsPerUser = 30 }
        var wrong = 0
        for address in 0..<10 {
            let counts = await Self.outcomes(10, parts.auth, password: "wrong", address: "198.51.100.\(address)")
            wrong += counts[.wrong] ?? 0
        }
        #expect(wrong == 30)
        await #expect(throws: TokenGateError.self) {
            _ = try await parts.auth.login(username: "alice", password: "alice-password", userAgent: "", address: "203.0.113.1")
        }
        parts.redis.shutdown()
    }
}
