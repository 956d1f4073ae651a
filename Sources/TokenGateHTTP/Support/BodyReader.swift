import Hummingbird
import NIOCore
import TokenGate

/// Reads the small bodies of the auth routes with a size limit and a deadline, so a client that
/// trickles its body cannot hold a request (and its memory) open for ever.
enum BodyReader {
    /// The body, at most `maxBytes` (else `payload_too_large`), within `timeout` (else `invalid_request`).
    static func collect(_ request: Request, upTo maxBytes: Int, timeout: Duration) async throws -> ByteBuffer {
        try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
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
}
