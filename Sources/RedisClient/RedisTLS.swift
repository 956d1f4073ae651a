import NIOCore
public import NIOSSL

/// TLS to Redis over swift-nio-ssl: `NIOSSLClientHandler` sits under `RedisChannelHandler`, so
/// hiredis still reads and writes plain RESP.
extension RedisConfiguration.TLS {
    /// The TLS context the files make: Redis's certificate must chain to the CA (or the system's
    /// roots) and carry the expected name or address; TLS 1.2 or newer. Throws a message naming the
    /// setting whose file could not be used (never a file's contents).
    public func makeContext() throws(RedisTLSError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        if let caFile {
            let certificates: [NIOSSLCertificate]
            do { certificates = try NIOSSLCertificate.fromPEMFile(caFile) } catch {
                throw RedisTLSError(.caFile, "\(caFile) cannot be read as PEM certificates (\(error))")
            }
            guard !certificates.isEmpty else { throw RedisTLSError(.caFile, "\(caFile) holds no certificate") }
            configuration.trustRoots = .certificates(certificates)
        }
        switch (certificateFile, keyFile) {
        case (nil, nil):
            break
        case (let certificateFile?, let keyFile?):
            do {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
            } catch {
                throw RedisTLSError(.certificateFile, "\(certificateFile) cannot be read as PEM certificates (\(error))")
            }
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            } catch {
                throw RedisTLSError(.keyFile, "\(keyFile) cannot be read as a PEM private key")
            }
        default:
            throw RedisTLSError(
                certificateFile == nil ? .certificateFile : .keyFile,
                "a client certificate needs both its certificate file and its key file"
            )
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw RedisTLSError(.keyFile, "the certificate and key do not make a TLS context: do they belong together? (\(error))")
        }
    }

    /// The TLS handler for a connection to `host`: SNI and the certificate's DNS name are
    /// `serverName`, else the host (an IP address is sent no SNI); a certificate carrying the
    /// address connected to passes too.
    func handler(context: NIOSSLContext, host: String) throws -> NIOSSLClientHandler {
        let name = serverName ?? host
        let isAddress = (try? SocketAddress(ipAddress: name, port: 0)) != nil
        return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : name)
    }
}

/// Why the TLS settings cannot be used; never holds a key.
public struct RedisTLSError: Error, Sendable, CustomStringConvertible {
    /// The setting at fault.
    public enum Setting: Sendable { case caFile, certificateFile, keyFile }
    /// The setting at fault.
    public let setting: Setting
    /// What is wrong.
    public let reason: String
    init(_ setting: Setting, _ reason: String) {
        self.setting = setting
        self.reason = reason
    }
    public var description: String { "Redis TLS: \(reason)" }
}
