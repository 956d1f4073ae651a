public import ServiceLifecycle

/// Deletes, after the answer, the keys of the sessions a large logout-all ended
/// (`SessionStore.logoutAll`): work the service owns and runs as a `Service`, not stray tasks. It
/// runs the jobs it is given side by side; on graceful shutdown it takes no more and finishes those
/// it has (keep it ahead of the Redis client in the service group, so Redis outlives it). Work it
/// no longer takes is done by the caller instead; keys it never reaches still expire with their TTLs.
public final class Reaper: Service, Sendable {
    private let jobs: AsyncStream<@Sendable () async -> Void>
    private let intake: AsyncStream<@Sendable () async -> Void>.Continuation

    /// A reaper that takes work at once and does it while `run` runs.
    public init() {
        (jobs, intake) = AsyncStream.makeStream()
    }

    /// Queues `work`; false once the reaper has stopped taking work (the caller does it then).
    func submit(_ work: @escaping @Sendable () async -> Void) -> Bool {
        if case .enqueued = intake.yield(work) { return true }
        return false
    }

    /// Runs the queued work until graceful shutdown, then finishes what was queued.
    public func run() async {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await work in jobs { group.addTask { await work() } }
            }
        } onGracefulShutdown: {
            self.intake.finish()
        }
    }
}
