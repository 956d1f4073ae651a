/// A JSON value from `StrictJSON`.
public enum JSONValue: Sendable, Equatable {
    case string(String)
    /// The number's exact text, so integers of any size are judged without rounding.
    case number(String)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    /// The value when it is an integer that fits in 64 bits (no fraction, no exponent).
    public var integer: Int64? {
        guard case .number(let text) = self else { return nil }
        return Int64(text)
    }

    /// The value when it is a string.
    public var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }
}

/// A small RFC 8259 parser that refuses what a lenient one lets through: duplicate member names,
/// invalid UTF-8, lone surrogates, control characters in strings, trailing bytes, and nesting
/// deeper than a limit. Used for token headers and payloads and for request bodies.
public enum StrictJSON {
    /// Why a document was refused.
    public struct ParseError: Error, Sendable, Equatable {
        /// What is wrong.
        public let reason: String
    }

    /// Parses a document whose top level must be an object.
    public static func parseObject(_ bytes: some Collection<UInt8>, maxDepth: Int = 8) throws(ParseError) -> [String: JSONValue] {
        var parser = Parser(bytes: Array(bytes), maxDepth: maxDepth)
        parser.skipSpace()
        guard parser.peek() == UInt8(ascii: "{") else { throw ParseError(reason: "not a JSON object") }
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.index == parser.bytes.count else { throw ParseError(reason: "trailing bytes after JSON") }
        guard case .object(let object) = value else { throw ParseError(reason: "not a JSON object") }
        return object
    }

    private struct Parser {
        let bytes: [UInt8]
        let maxDepth: Int
        var index = 0

        init(bytes: [UInt8], maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
        }

        mutating func expect(_ literal: String) throws(ParseError) {
            for byte in literal.utf8 {
                guard peek() == byte else { throw ParseError(reason: "invalid literal") }
                index += 1
            }
        }

        mutating func value(depth: Int) throws(ParseError) -> JSONValue {
            guard depth <= maxDepth else { throw ParseError(reason: "nested too deeply") }
            skipSpace()
            guard let byte = peek() else { throw ParseError(reason: "unexpected end") }
            switch byte {
            case UInt8(ascii: "{"):
                index += 1
                var object: [String: JSONValue] = [:]
                object.reserveCapacity(8)
                skipSpace()
                if peek() == UInt8(ascii: "}") {
                    index += 1
                    return .object(object)
                }
                while true {
                    skipSpace()
                    guard peek() == UInt8(ascii: "\"") else { throw ParseError(reason: "expected a member name") }
                    let name = try string()
                    skipSpace()
                    try expect(":")
                    let member = try value(depth: depth + 1)
                    guard object.updateValue(member, forKey: name) == nil else {
                        throw ParseError(reason: "duplicate member name")
                    }
                    skipSpace()
                    if peek() == UInt8(ascii: ",") {
                        index += 1
                        continue
                    }
                    try expect("}")
                    return .object(object)
                }
            case UInt8(ascii: "["):
                index += 1
                var array: [JSONValue] = []
                skipSpace()
                if peek() == UInt8(ascii: "]") {
                    index += 1
                    return .array(array)
                }
                while true {
                    array.append(try value(depth: depth + 1))
                    skipSpace()
                    if peek() == UInt8(ascii: ",") {
                        index += 1
                        continue
                    }
                    try expect("]")
                    return .array(array)
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"):
                try expect("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try expect("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try expect("null")
                return .null
            default:
                return .number(try number())
            }
        }

        mutating func number() throws(ParseError) -> String {
            let start = index
            func digits(_ parser: inout Parser) -> Int {
                var count = 0
                while let byte = parser.peek(), byte >= 0x30 && byte <= 0x39 {
                    parser.index += 1
                    count += 1
                }
                return count
            }
            if peek() == UInt8(ascii: "-") { index += 1 }
            if peek() == UInt8(ascii: "0") {
                index += 1
            } else if digits(&self) == 0 {
                throw ParseError(reason: "invalid number")
            }
            if peek() == UInt8(ascii: ".") {
                index += 1
                guard digits(&self) > 0 else { throw ParseError(reason: "invalid number") }
            }
            if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
                index += 1
                if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
                guard digits(&self) > 0 else { throw ParseError(reason: "invalid number") }
            }
            guard index - start <= 64 else { throw ParseError(reason: "number too long") }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        mutating func hex4() throws(ParseError) -> UInt32 {
            guard index + 4 <= bytes.count,
                bytes[index..<index + 4].allSatisfy({ byte in
                    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
                }),
                let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
            else { throw ParseError(reason: "invalid \\u escape") }
            index += 4
            return value
        }

        mutating func string() throws(ParseError) -> String {
            index += 1  // opening quote
            // The usual string has no escape: validate it in place, without a copy byte by byte.
            var end = index
            var ascii = true
            while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20 {
                ascii = ascii && bytes[end] < 0x80
                end += 1
            }
            if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
                // ASCII is valid UTF-8 as it stands; anything else is validated strictly.
                let text: String
                if ascii {
                    text = String(decoding: bytes[index..<end], as: UTF8.self)
                } else {
                    guard let valid = String(validating: bytes[index..<end], as: UTF8.self) else { throw ParseError(reason: "invalid UTF-8") }
                    text = valid
                }
                index = end + 1
                return text
            }
            var out: [UInt8] = []
            while true {
                guard let byte = peek() else { throw ParseError(reason: "unterminated string") }
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard let text = String(validating: out, as: UTF8.self) else { throw ParseError(reason: "invalid UTF-8") }
                    return text
                case UInt8(ascii: "\\"):
                    guard let escaped = peek() else { throw ParseError(reason: "unterminated string") }
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800...0xDBFF).contains(scalar) {
                            try expect("\\u")
                            let low = try hex4()
                            guard (0xDC00...0xDFFF).contains(low) else { throw ParseError(reason: "lone surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(scalar) {
                            throw ParseError(reason: "lone surrogate")
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw ParseError(reason: "invalid \\u escape") }
                        out.append(contentsOf: String(Character(unicode)).utf8)
                    default:
                        throw ParseError(reason: "invalid escape")
                    }
                default:
                    guard byte >= 0x20 else { throw ParseError(reason: "control character in string") }
                    out.append(byte)
                }
            }
        }
    }
}
