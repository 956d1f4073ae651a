import HTTPTypes

/// The header fields TokenGate reads or writes that HTTPTypes does not name: every name in one place.
extension HTTPField.Name {
    /// Forward-auth's answer: the token's user and session.
    static let xAuthUser = Self("X-Auth-User")!
    static let xAuthSession = Self("X-Auth-Session")!
    /// Per-request rotation: the successor token.
    static let xNextToken = Self("X-Next-Token")!
    /// Cookie mode: the CSRF token, the browser's fetch site, and the logout's wipe.
    static let xCSRFToken = Self("X-CSRF-Token")!
    static let secFetchSite = Self("Sec-Fetch-Site")!
    static let clearSiteData = Self("Clear-Site-Data")!
    /// Forward-auth: the method of the request a proxy asks about.
    static let xOriginalMethod = Self("X-Original-Method")!
    static let xForwardedMethod = Self("X-Forwarded-Method")!
    /// The client behind trusted proxies.
    static let xForwardedFor = Self("X-Forwarded-For")!
    static let pragma = Self("Pragma")!
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
}
