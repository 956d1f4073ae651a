/// What Cluster does after a command or script came back with an error: the one redirect path
/// that scripts (`ClusterRedisClient.redirected`) and plain commands (`ClusterRedisClient.send`)
/// share, decided from the reply alone (unit-tested without a server).
///
/// - `MOVED` and `ASK` send it on to the node named (after `ASKING` for `ASK`; a `MOVED` also
///   patches that slot and looks the map up), at most `maximumRedirects` times: it did not run
///   where it was refused.
/// - `TRYAGAIN`, `CLUSTERDOWN`, a redirect past the limit or one that cannot be read fail it (503)
///   and look the map up: never a hot loop of retries.
/// - Any other error fails it as it is (a lost connection is reported by the node client itself).
enum ClusterRoute: Equatable {
    /// Send it again, to the node `redirect` names.
    case follow(ClusterRedirect)
    /// Fail with the error; with `lookUp`, the slot map may be stale: read it again.
    case fail(lookUp: Bool)

    /// The most redirects one command follows.
    static var maximumRedirects: Int { 5 }

    /// The route after `error` from the node at `host`, for a command redirected `redirects` times so far.
    init(after error: RedisError, from host: String, redirects: Int) {
        guard error.isRedirect else {
            self = .fail(lookUp: false)
            return
        }
        guard redirects < Self.maximumRedirects, let redirect = ClusterRedirect(error, host: host) else {
            self = .fail(lookUp: true)
            return
        }
        self = .follow(redirect)
    }
}
