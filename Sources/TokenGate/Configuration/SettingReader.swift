/// Reads typed settings out of raw values (flags merged over the environment), collecting one
/// problem line per refused value instead of stopping at the first.
struct SettingReader {
    /// The raw values given; a missing one takes its default.
    let values: [Setting: String]
    /// One line per problem, each naming the setting(s).
    private(set) var problems: [String] = []
    private var refused: Set<Setting> = []

    init(_ values: [Setting: String]) { self.values = values }

    /// The setting's value. A refused value is reported and read as the setting's default, so
    /// that the rest can still be checked.
    mutating func callAsFunction<Value>(_ setting: Setting.Typed<Value>) -> Value {
        do {
            return try setting.value(values[setting])
        } catch {
            refuse(setting, error.reason)
            return setting.valueWhenUnset
        }
    }

    /// Whether the setting was given (as a flag or in the environment).
    func isGiven(_ setting: Setting) -> Bool { values[setting] != nil }

    /// Whether none of these settings was refused: a check across settings runs only on values
    /// that were accepted, so that one bad value makes one line.
    func accepted(_ settings: Setting...) -> Bool { refused.isDisjoint(with: settings) }

    /// Reports a problem with one setting.
    mutating func refuse(_ setting: Setting, _ reason: String) {
        refused.insert(setting)
        problems.append("\(setting.environmentName): \(reason)")
    }

    /// Refuses `setting` with problems that already name it (`SecretFiles`' lines).
    mutating func refuse(_ setting: Setting, problems lines: [String]) {
        refused.insert(setting)
        problems += lines
    }

    /// Reports a problem in its own words (naming the settings it concerns).
    mutating func report(_ line: String) { problems.append(line) }
}
