/// Why the configuration was refused: one line per problem, each naming the setting.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// One human-readable line per problem.
    public let problems: [String]

    /// Creates an error from its problem lines.
    public init(_ problems: [String]) { self.problems = problems }

    public var description: String { problems.joined(separator: "\n") }
}
