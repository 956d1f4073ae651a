import ArgumentParser
import NIOCore
import NIOPosix

// Run Swift concurrency on the NIO event loops: request handlers, the HTTP server and the Redis
// connections share the same threads, so awaiting a Redis reply costs no thread hop. It must happen
// before anything else uses Swift concurrency, hence this file instead of @main.
_ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
await Entry.main()

/// What `AsyncParsableCommand.main()` does, spelled out: from top-level code a plain
/// `TokenGateCommand.main()` resolves to the synchronous entry point.
enum Entry {
    static func main() async {
        do {
            var command = try TokenGateCommand.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await runAsync(&asyncCommand)
            } else {
                try command.run()
            }
        } catch {
            TokenGateCommand.exit(withError: error)
        }
    }

    private static func runAsync<Command: AsyncParsableCommand>(_ command: inout Command) async throws {
        try await command.run()
    }
}
