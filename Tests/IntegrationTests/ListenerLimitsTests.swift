import Testing

@testable import TokenGateHTTP

@Suite("listener limits")
struct ListenerLimitsTests {
    @Test("the listeners' caps together leave the reserve at any open-file limit")
    func budget() {
        for limit in [0, 1, 16, 64, 100, 256, 257, 1000, 1024, 4096, 65536, 1 << 20] {
            for serviceAPI in [false, true] {
                let budget = ConnectionBudget(openFileLimit: limit, serviceAPI: serviceAPI)
                #expect(budget.publicConnections >= 1, "limit \(limit)")
                #expect((budget.serviceConnections >= 1) == serviceAPI, "limit \(limit)")
                #expect(budget.reserve >= 48 && budget.reserve <= 128, "limit \(limit)")
                if limit >= 48 + 2 {
                    #expect(budget.publicConnections + budget.serviceConnections + budget.reserve <= limit, "limit \(limit)")
                }
            }
        }
        #expect(ConnectionBudget(openFileLimit: 256, serviceAPI: true) == ConnectionBudget(openFileLimit: 256, serviceAPI: true))
        let at256 = ConnectionBudget(openFileLimit: 256, serviceAPI: true)
        #expect((at256.reserve, at256.publicConnections, at256.serviceConnections) == (64, 168, 24))
        #expect(ConnectionBudget(openFileLimit: 256, serviceAPI: false).publicConnections == 192)
    }

    @Test("paths with an empty or a dot segment are not canonical")
    func canonicalPaths() {
        for path in ["/", "/admin/v1/users/u/sessions", "/admin/v1/users/u/sessions/AAAA", "/a/.b/c..", "/..."] {
            #expect(CanonicalPathMiddleware.isCanonical(path), "\(path)")
        }
        for path in ["", "/admin/v1/users/u/sessions/", "/admin/v1/users//sessions", "/admin/v1/users/u/sessions/.", "/a/../b", "/./a", "a/b"] {
            #expect(!CanonicalPathMiddleware.isCanonical(path), "\(path)")
        }
    }
}
