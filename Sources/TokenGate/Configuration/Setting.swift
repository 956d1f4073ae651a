/// A setting of `tokengate serve`: its environment variable, its flag, its default and its help.
///
/// Every setting is declared once, in `Setting+Table.swift`, as a `Setting.Typed` that also says
/// how its text becomes a value; the command line, `--help`, the operator commands and
/// `Configuration.parse` all follow that table (README, "Configuration"). Raw values are keyed by
/// `Setting` (`[.tokenTTL: "30"]`); `SettingReader` turns them into typed values.
///
/// A class so that the table's typed declarations (`Setting.Typed<Value>`, its only subclass)
/// can key one dictionary of raw values. It is `@unchecked Sendable` because the compiler
/// cannot check a class that is not final: every stored property, here and in `Typed`, is a
/// `let` of a `Sendable` type.
public class Setting: Hashable, CustomStringConvertible, @unchecked Sendable {
    /// The environment variable, e.g. `TOKENGATE_TOKEN_TTL`.
    public let environmentName: String
    /// The default as it is written (in `--help` and the README), or nil when there is none.
    public let defaultValue: String?
    /// One line of help.
    public let help: String

    fileprivate init(_ environmentName: String, defaultValue: String?, help: String) {
        precondition(environmentName.hasPrefix("TOKENGATE_"), "a setting's variable starts with TOKENGATE_")
        self.environmentName = environmentName
        self.defaultValue = defaultValue
        self.help = help
    }

    /// The `serve` flag, e.g. `--token-ttl`.
    public var flag: String {
        "--" + String(environmentName.dropFirst("TOKENGATE_".count).lowercased().map { $0 == "_" ? "-" : $0 })
    }

    public var description: String { environmentName }

    public static func == (lhs: Setting, rhs: Setting) -> Bool { lhs.environmentName == rhs.environmentName }

    public func hash(into hasher: inout Hasher) { hasher.combine(environmentName) }

    /// A setting whose text becomes a `Value`: the one declaration of a setting.
    public final class Typed<Value: Sendable>: Setting, @unchecked Sendable {
        private let parse: @Sendable (String) throws(Refusal) -> Value
        /// The value when the setting is not given: its default, parsed, or nil.
        let valueWhenUnset: Value

        /// A setting with a default.
        ///
        /// - Parameters:
        ///   - environmentName: `TOKENGATE_…`; the flag is derived from it.
        ///   - defaultValue: the default as written; it must parse.
        ///   - help: one line for `--help`.
        ///   - parse: turns the text into a value, or says in a few words why not ("must be …").
        public init(
            _ environmentName: String,
            default defaultValue: String,
            help: String,
            parse: @escaping @Sendable (String) throws(Refusal) -> Value
        ) {
            self.parse = parse
            do {
                valueWhenUnset = try parse(defaultValue)
            } catch {
                preconditionFailure("the default of \(environmentName) is refused: \(error.reason)")
            }
            super.init(environmentName, defaultValue: defaultValue, help: help)
        }

        /// A setting without a default: nil when not given.
        public init(
            _ environmentName: String,
            help: String,
            parse: @escaping @Sendable (String) throws(Refusal) -> Value
        ) where Value: ExpressibleByNilLiteral {
            self.parse = parse
            valueWhenUnset = nil
            super.init(environmentName, defaultValue: nil, help: help)
        }

        /// The value of `text` (nil: not given), or why it is refused.
        func value(_ text: String?) throws(Refusal) -> Value {
            guard let text else { return valueWhenUnset }
            return try parse(text)
        }
    }

    /// Why a setting's text is refused, in a few words ("must be on or off"); the problem line
    /// names the setting before it.
    public struct Refusal: Error, Sendable {
        /// The reason.
        public let reason: String

        /// Creates a refusal.
        public init(_ reason: String) { self.reason = reason }
    }
}
