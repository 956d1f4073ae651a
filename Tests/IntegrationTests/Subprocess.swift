import Foundation
import Synchronization

/// Runs the real `tokengate` binary (posix_spawn; Foundation's Process spins in waitUntilExit on Linux).
enum Subprocess {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// The binary under test: `TOKENGATE_BINARY`, or the debug build in this package.
    static var binary: String {
        ProcessInfo.processInfo.environment["TOKENGATE_BINARY"] ?? FileManager.default.currentDirectoryPath + "/.build/debug/tokengate"
    }

    /// Runs to completion with `input` on stdin.
    static func run(_ arguments: [String], input: String = "", environment: [String: String] = [:]) throws -> Result {
        let child = try spawn(arguments, environment: environment)
        child.stdin.write(Data(input.utf8))
        try child.stdin.close()
        // Read both pipes concurrently so a full stderr cannot block the child.
        let errorText = Mutex<String>("")
        let errorRead = DispatchSemaphore(value: 0)
        Thread {
            errorText.withLock { $0 = String(decoding: child.stderr.readDataToEndOfFile(), as: UTF8.self) }
            errorRead.signal()
        }.start()
        let output = String(decoding: child.stdout.readDataToEndOfFile(), as: UTF8.self)
        let status = child.wait()
        errorRead.wait()
        return Result(status: status, stdout: output, stderr: errorText.withLock { $0 })
    }

    /// A running child with pipes to its standard streams.
    final class Child: Sendable {
        let pid: pid_t
        let stdin: FileHandle
        let stdout: FileHandle
        let stderr: FileHandle
        private let reaped = Mutex<Int32?>(nil)

        init(pid: pid_t, stdin: FileHandle, stdout: FileHandle, stderr: FileHandle) {
            self.pid = pid
            self.stdin = stdin
            self.stdout = stdout
            self.stderr = stderr
        }

        /// Waits for exit; returns the exit status (128 + signal when killed).
        func wait() -> Int32 {
            if let status = reaped.withLock({ $0 }) { return status }
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
            let status = (raw & 0x7F) == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
            reaped.withLock { $0 = status }
            return status
        }

        func signal(_ signal: Int32) { kill(pid, signal) }

        deinit {
            if reaped.withLock({ $0 }) == nil {
                kill(pid, SIGKILL)
                var raw: Int32 = 0
                waitpid(pid, &raw, 0)
            }
        }
    }

    /// Starts the binary with `arguments`; `environment` is added to a copy of ours without TOKENGATE_* settings.
    static func spawn(_ arguments: [String], environment: [String: String] = [:]) throws -> Child {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TOKENGATE_") || $0.key == "TOKENGATE_BINARY" }
        env.merge(environment) { $1 }
        let stdinPipe = Pipe()
        let stdoutPipe = Pipe()
        let stderrPipe = Pipe()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe.fileHandleForReading.fileDescriptor, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe.fileHandleForWriting.fileDescriptor, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe.fileHandleForWriting.fileDescriptor, 2)
        _ = spawnCloseFrom(&actions, 3)
        let argv: [UnsafeMutablePointer<CChar>?] = ([binary] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv + envp { free(pointer) }
        }
        var pid: pid_t = 0
        let status = argv.withUnsafeBufferPointer { argvBuffer in
            envp.withUnsafeBufferPointer { envBuffer in
                posix_spawn(&pid, binary, &actions, nil, argvBuffer.baseAddress!, envBuffer.baseAddress!)
            }
        }
        try stdinPipe.fileHandleForReading.close()
        try stdoutPipe.fileHandleForWriting.close()
        try stderrPipe.fileHandleForWriting.close()
        guard status == 0 else { throw SetupError("cannot start \(binary): error \(status)") }
        return Child(
            pid: pid,
            stdin: stdinPipe.fileHandleForWriting,
            stdout: stdoutPipe.fileHandleForReading,
            stderr: stderrPipe.fileHandleForReading
        )
    }
}

/// glibc >= 2.34 has it; Swift's Glibc module does not import it without _GNU_SOURCE.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
func spawnCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32
