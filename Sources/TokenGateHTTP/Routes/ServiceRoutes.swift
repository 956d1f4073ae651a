import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RedisClient
import TokenGate

/// The public routes: health, readiness, metrics and the static browser files (`docs/openapi.yaml`, tag `public`).
struct ServiceRoutes {
    let auth: AuthService
    let inspector: StoreInspector
    let metrics: Metrics
    let redis: any RedisClient

    func register(on router: Router<TokenGateRequestContext>) {
        router.get("/healthz") { _, _ in
            var json = JSONWriter()
            json.object { $0.field("status", "ok") }
            return Response.json(json)
        }
        router.get("/readyz") { _, _ in
            guard await auth.store.ping() else { throw TokenGateError(.storeUnavailable, "Redis does not answer") }
            var json = JSONWriter()
            json.object { $0.field("status", "ready") }
            return Response.json(json)
        }
        router.get("/metrics") { _, context in
            do {
                try await metrics.refreshLiveSessions { try await inspector.liveSessionCount() }
            } catch {
                context.logger.debug("live session count unavailable", metadata: ["error": "\(error)"])
            }
            metrics.reportRedis(redis.statistics)
            metrics.reportGeneration(auth.generation)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.emit()))
            )
        }
        router.get("/.well-known/jwks.json") { _, _ in
            // Public halves of the EdDSA and ES256 keys (the signing one and those still verifying);
            // HS256 secrets are never published, so an HS256-only service answers an empty set.
            var json = JSONWriter()
            json.object {
                $0.array("keys") { json in
                    for key in auth.signingKeys {
                        guard let jwk = key.publicJWK else { continue }
                        json.object { for (name, value) in jwk { $0.field(name, value) } }
                    }
                }
            }
            var response = Response.json(json)
            response.headers[.cacheControl] = "public, max-age=300"
            return response
        }
        router.get("/") { _, _ in Self.file(StaticFiles.indexHTML, type: "text/html; charset=utf-8") }
        router.get("/tokengate.js") { _, _ in Self.file(StaticFiles.clientJS, type: "text/javascript; charset=utf-8") }
        router.get("/demo.js") { _, _ in Self.file(StaticFiles.demoJS, type: "text/javascript; charset=utf-8") }
    }

    private static func file(_ text: String, type: String) -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: type, .cacheControl: "no-cache", .xContentTypeOptions: "nosniff",
                .contentSecurityPolicy: "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            ],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }
}
