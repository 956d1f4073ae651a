import Testing

@testable import TokenGate

/// The claims scanner (`Claims(flat:)`) must accept only payloads `StrictJSON` accepts, with the
/// same values; everything else it leaves to `StrictJSON`.
@Suite struct ClaimsTests {
    /// The claims `StrictJSON` reads from the payload (nil when it refuses it).
    private func strict(_ json: String) -> Claims? {
        guard let object = try? StrictJSON.parseObject(Array(json.utf8), maxDepth: 4) else { return nil }
        return Claims(object)
    }

    @Test func tokenGatesPayloadIsScanned() throws {
        let json =
            #"{"exp":1796248885,"iss":"tokengate","iat":1796248855,"jti":"Z4M6Ujo6WSB_RXLF4BAcvQ","sid":"q_3tc4eui83klldTGq2ByQ","sub":"alice"}"#
        let scanned = try #require(Claims(flat: Array(json.utf8)))
        #expect(scanned == strict(json))
        #expect(scanned.exp?.integer == 1_796_248_885)
        #expect(scanned.sub?.string == "alice")
        #expect(scanned.aud == nil && scanned.nbf == nil)
    }

    @Test(arguments: [
        // Accepted by both.
        #"{}"#, #"{"iss":""}"#, #"{"iat":0,"exp":-0}"#, #"{"iat":-12,"aud":"x y"}"#, #"{"nbf":9223372036854775807}"#,
        #"{"iat":99999999999999999999}"#, #"{"sub":"~!#$%&'()*+,-./:;<=>?@[]^_`{|}"}"#,
        // Left to StrictJSON, which accepts them.
        #"{ "iss":"a"}"#, #"{"iss" :"a"}"#, #"{"iss":"a" }"#, #"{"iss":"\u0061"}"#, #"{"iss":"é"}"#, #"{"aud":["a","b"]}"#,
        #"{"iat":1.5}"#, #"{"iat":1e3}"#, #"{"other":1}"#, #"{"ia":1}"#, #"{"iss":true}"#, #"{"iss":null}"#, #"{"iss":{"a":1}}"#,
        #"{"iss":"a\/b"}"#, "{\"iss\":\"\u{7F}\"}",
        // Refused by both.
        #"{"iss":"a","iss":"b"}"#, #"{"iat":01}"#, #"{"iat":-}"#, #"{"iat":1,}"#, #"{"iat":1"#, #"{"iat":1}x"#, #"{"iss":"a}"#,
        #"{iss:"a"}"#, #"["iss"]"#, "", #"{"iss":"a"}}"#, "{\"iss\":\"\u{1}\"}", #"{"iat":--1}"#, #"{"iat":1-}"#, #"{"iss":}"#,
        #"{,}"#, #"{"iss""a"}"#,
    ])
    func scannerAgreesWithStrictJSON(_ json: String) {
        let bytes = Array(json.utf8)
        if let scanned = Claims(flat: bytes) {
            // What the scanner accepts, StrictJSON accepts with the same values.
            #expect(scanned == strict(json), "\(json)")
        }
        // And reading a payload always ends as StrictJSON would decide.
        let read = try? Claims(payload: bytes)
        #expect(read == strict(json), "\(json)")
    }

    @Test func scannerTakesTheUsualFormsAndLeavesTheRest() {
        #expect(Claims(flat: Array(#"{"iss":"a","iat":1}"#.utf8)) != nil)
        #expect(Claims(flat: Array(#"{"iss":"a","iss":"b"}"#.utf8)) == nil)
        #expect(Claims(flat: Array(#"{ "iss":"a"}"#.utf8)) == nil)
        #expect(Claims(flat: Array(#"{"iss":"\u0061"}"#.utf8)) == nil)
        #expect(Claims(flat: Array(#"{"other":"a"}"#.utf8)) == nil)
    }
}
