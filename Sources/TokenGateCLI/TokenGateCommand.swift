import ArgumentParser

/// `tokengate`: the one executable.
struct TokenGateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokengate",
        abstract: "An auth front that issues short-lived JWTs, each one a Redis key with the same TTL.",
        subcommands: [Serve.self, Init.self, UserCommand.self, Sessions.self, Revoke.self, Doctor.self, KeyCommand.self, AdminKeyCommand.self]
    )
}
