import Hummingbird
import NIOCore
import TokenGate

/// Reads the small bodies of the auth routes with a size limit and a deadline, so a client that
/// trickles its body cannot hold a request (and its memory) open for ever.
enum BodyReader {
    /// The body, at most `maxBytes` (else `payload_too_large`), within `timeout` (else `invalid_request`).
    static func collect(_ request: Request, upTo maxBytes: Int, timeout: Duration) async throws -> ByteBuffer {
        // A declared length over the limit is refused before any of the body is waited for.
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > maxBytes {
            throw TokenGateError(.payloadTooLarge, "the request body is larger than allowed")
        }
        return try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask { try await request.body.collect(upTo: maxBytes) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let body = first else {
                throw TokenGateError(.invalidRequest, "the request body did not arrive in time")
            }
            return body
        }
    }

    /// The request's media type, lowercased, without parameters ("" when there is none). Not
    /// Hummingbird's `MediaType(from:)`, which refuses the space RFC 9110 allows before a
    /// parameter (`application/json ; charset=utf-8`).
    static func mediaType(_ request: Request) -> String {
        (request.headers[.contentType] ?? "").lowercased().split(separator: ";").first.map { $0.trimmingSpaces() } ?? ""
    }

    /// A JSON object body (`Content-Type: application/json`, duplicate members refused), read as
    /// `collect` reads it; `invalid_request` otherwise.
    static func jsonObject(_ request: Request, upTo maxBytes: Int, timeout: Duration) async throws -> [String: JSONValue] {
        guard mediaType(request) == "application/json" else {
            throw TokenGateError(.invalidRequest, "send a JSON body (Content-Type: application/json)")
        }
        let body = try await collect(request, upTo: maxBytes, timeout: timeout)
        do { return try StrictJSON.parseObject(body.readableBytesView) } catch {
            throw TokenGateError(.invalidRequest, "the body is not a valid JSON object: \(error.reason)")
        }
    }
}
