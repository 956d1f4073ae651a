public import Hummingbird
public import NIOCore
public import TokenGate

/// The request context: Hummingbird's core storage, the peer address and, once the auth
/// middleware has admitted the request, the verified token.
public struct TokenGateRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's address.
    public let remoteAddress: SocketAddress?
    /// The token that authenticated this request (set by `AuthMiddleware`).
    public var identity: VerifiedToken?
    /// The name of the service key that authenticated this request (the service API only).
    public var serviceKey: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.identity = nil
        self.serviceKey = nil
    }

    /// The client address as text (without port), for rate limiting and the session list.
    var clientAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}
