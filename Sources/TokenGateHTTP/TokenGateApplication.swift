public import Hummingbird
import HummingbirdCore
public import Logging
public import NIOCore
public import RedisClient
public import ServiceLifecycle
public import TokenGate

/// Builds the HTTP application: routes, middleware and the Redis client as a managed service.
public enum TokenGateApplication {
    /// Everything the HTTP layer needs, built once from the configuration.
    public struct Parts: Sendable {
        /// The Redis client (a `Service`: closed on graceful shutdown).
        public let redis: any RedisClient
        /// Deletes the keys of large logouts-all after their answers (a `Service`: drained on
        /// graceful shutdown).
        public let reaper: Reaper
        /// Login, refresh, logout and verify.
        public let auth: AuthService
        /// Key-space checks for `/metrics` and `doctor`.
        public let inspector: StoreInspector
        /// Prometheus metrics.
        public let metrics: Metrics
    }

    /// Creates the Redis client, store and auth service for `configuration`.
    public static func makeParts(
        configuration: Configuration,
        users: UserStore,
        logger: Logger,
        now: (@Sendable () -> Int64)? = nil
    ) async -> Parts {
        let metrics = Metrics()
        let redis = configuration.redis.makeClient(logger: logger)
        let reaper = Reaper()
        let store = SessionStore(
            redis: redis,
            keys: configuration.keys,
            logger: logger,
            reaper: reaper,
            replicaWait: configuration.replicaWait,
            metrics: metrics.factory
        )
        let auth =
            if let now {
                AuthService(configuration: configuration, store: store, users: users, logger: logger, metrics: metrics.factory, now: now)
            } else {
                AuthService(configuration: configuration, store: store, users: users, logger: logger, metrics: metrics.factory)
            }
        return Parts(
            redis: redis,
            reaper: reaper,
            auth: auth,
            inspector: StoreInspector(redis: redis, keys: configuration.keys),
            metrics: metrics
        )
    }

    /// The router with every route of the contract, deny-by-default.
    public static func router(_ parts: Parts) -> Router<TokenGateRequestContext> {
        // HEAD works wherever GET does (balancers health-check with HEAD).
        let router = Router(context: TokenGateRequestContext.self, options: .autoGenerateHeadEndpoints)
        // Hummingbird applies a middleware to the routes added after it and to every unmatched path,
        // so the order of registration says which routes need a token.
        router.add(middleware: EdgeMiddleware(metrics: parts.metrics))
        let auth = AuthRoutes(auth: parts.auth)
        ServiceRoutes(auth: parts.auth, inspector: parts.inspector, metrics: parts.metrics, redis: parts.redis).register(on: router)
        auth.registerOpen(on: router)
        // Deny by default from here on, unknown paths included.
        router.add(middleware: AuthMiddleware(auth: parts.auth, metrics: parts.metrics))
        HotRoute.register(on: router, auth: parts.auth)
        auth.registerProtected(on: router)
        return router
    }

    /// The service API's router (`docs/openapi.yaml`, tag `service`): every route, and every unmatched path, needs
    /// a service key; user tokens are not service keys.
    public static func adminRouter(_ parts: Parts) -> Router<TokenGateRequestContext> {
        let router = Router(context: TokenGateRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: EdgeMiddleware(metrics: parts.metrics))
        router.add(middleware: ServiceKeyMiddleware(auth: parts.auth))
        router.add(middleware: CanonicalPathMiddleware())
        AdminRoutes(auth: parts.auth).register(on: router)
        return router
    }

    /// The service API on its own listener (`TOKENGATE_ADMIN_LISTEN`), to run as a service of the
    /// main application (`application(additionalServices:)`), so both shut down together. It keeps
    /// connections as the public listener does (the same idle clock: a connection that sends
    /// nothing, or trickles its headers or body, is closed after `CLIENT_TIMEOUT`), and accepts at
    /// most `maxConnections` at once (`ConnectionBudget.serviceConnections`).
    public static func adminApplication(
        _ parts: Parts,
        admin: AdminAPI,
        configuration: Configuration,
        logger: Logger,
        maxConnections: Int? = nil,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: adminRouter(parts),
            server: server(parts, configuration: configuration, answersHotRoutes: false),
            configuration: .init(
                address: .hostname(admin.host, port: admin.port),
                serverName: nil,
                availableConnectionsDelegate: maxConnections.map { MaximumAvailableConnections($0, logger: logger) }
            ),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }

    /// The application, listening where the configuration says, with the Redis client as a service.
    /// A connection idle (or sending its headers) longer than `CLIENT_TIMEOUT` is closed, and at most
    /// `maxConnections` are open at once (new ones wait in the listen backlog), so slow or many
    /// clients can neither starve the others nor exhaust the process's file descriptors
    /// (`ConnectionBudget` shares the open-file limit between the listeners).
    public static func application(
        _ parts: Parts,
        configuration: Configuration,
        logger: Logger,
        maxConnections: Int? = nil,
        additionalServices: [any Service] = [],
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(parts),
            // FastPathHandler answers the hot routes in the pipeline and keeps the idle timer.
            server: server(parts, configuration: configuration, answersHotRoutes: true),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: nil,
                availableConnectionsDelegate: maxConnections.map { MaximumAvailableConnections($0, logger: logger) }
            ),
            // Shut down in reverse: the reaper finishes its work while Redis is still there.
            services: [parts.redis, parts.reaper] + additionalServices,
            onServerRunning: onServerRunning,
            logger: logger
        )
    }

    /// HTTP/1 with `FastPathHandler` in the pipeline: the idle clock for both listeners (a silent
    /// or trickling client is cut off at `CLIENT_TIMEOUT`), and the hot routes only where asked.
    private static func server(_ parts: Parts, configuration: Configuration, answersHotRoutes: Bool) -> HTTPServerBuilder {
        .http1(
            configuration: .init(
                additionalChannelHandlers: [
                    FastPathHandler.Installer {
                        FastPathHandler(
                            auth: parts.auth,
                            metrics: parts.metrics,
                            idleTimeout: configuration.clientTimeout,
                            answersHotRoutes: answersHotRoutes
                        )
                    }
                ],
                idleTimeout: nil
            )
        )
    }
}
