/// How the process's open-file limit is shared: a reserve for Redis connections, files and the
/// runtime (running out of descriptors crashes the process instead of refusing a client), and the
/// rest as the connection caps of the listeners, whose sum never reaches into the reserve.
///
/// Each listener accepts at most its cap at once; further connections wait in the kernel's listen
/// backlog, which holds no descriptor of the process. The service API (backends with connection
/// pools) gets an eighth of the connections, the public listener the rest.
public struct ConnectionBudget: Sendable, Equatable {
    /// Descriptors kept for everything but client connections.
    public let reserve: Int
    /// The public listener's cap.
    public let publicConnections: Int
    /// The service API listener's cap (0 without a service API).
    public let serviceConnections: Int

    /// The budget for an open-file limit of `openFileLimit` descriptors: a quarter of it, at least
    /// 48 and at most 128, is the reserve.
    public init(openFileLimit: Int, serviceAPI: Bool) {
        let limit = max(0, openFileLimit)
        reserve = max(48, min(128, limit / 4))
        let clients = max(serviceAPI ? 2 : 1, limit - reserve)
        serviceConnections = serviceAPI ? max(1, min(512, clients / 8)) : 0
        publicConnections = clients - serviceConnections
    }
}
