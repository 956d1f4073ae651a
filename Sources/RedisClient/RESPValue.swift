/// A Redis reply, copied out of hiredis into Swift values.
///
/// Nothing here refers to C memory: the decoder frees every hiredis reply
/// object right after converting it.
public enum RESPValue: Sendable, Equatable {
    /// A simple status reply such as `OK` or `PONG`.
    case status(String)
    /// An error reply, e.g. `NOSCRIPT No matching script`.
    case error(String)
    /// An integer reply.
    case integer(Int64)
    /// A bulk string (binary safe).
    case bulk([UInt8])
    /// The null bulk string or null array.
    case null
    /// An array reply; elements may be of any kind, including errors.
    case array([RESPValue])

    /// The value as UTF-8 text, for bulk strings and status replies.
    public var string: String? {
        switch self {
        case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        default: return nil
        }
    }

    /// The value as an integer, for integer replies and bulk strings holding a decimal number.
    public var int: Int64? {
        switch self {
        case .integer(let value): return value
        case .bulk(let bytes): return Int64(String(decoding: bytes, as: UTF8.self))
        default: return nil
        }
    }

    /// True for an error reply.
    public var isError: Bool {
        if case .error = self { return true }
        return false
    }

    /// The elements of an array reply (empty for null).
    public var array: [RESPValue]? {
        switch self {
        case .array(let values): return values
        case .null: return []
        default: return nil
        }
    }
}
