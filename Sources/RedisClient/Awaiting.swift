/// Awaits an operation that reports through a completion callback. Throughout the package the
/// callback form is the core (the HTTP fast path calls it from a channel handler, with no task)
/// and the async form wraps it with this.
package func awaiting<Value: Sendable, Failure: Error>(
    _ operation: (@escaping @Sendable (Result<Value, Failure>) -> Void) -> Void
) async throws(Failure) -> Value {
    try await withCheckedContinuation { continuation in operation { continuation.resume(returning: $0) } }.get()
}
