import RedisClient

/// Every Lua script TokenGate runs, in one place. Each change to a user's keys is one script:
/// one round trip, atomic, and timed by Redis's own clock (`TIME`), never an instance's.
///
/// Check results shared by several scripts: `1` accepted, `0` revoked (the token's key or its
/// session is gone, or the session is not in its user's index), `-1` idle too long, `-2` past the
/// session's max age, `-3` a rotated-out token used after its grace window (the session is ended as
/// stolen).
///
/// A user's session index is the authority on which of the user's sessions are live: logout-all of
/// many sessions moves the whole index aside in one O(1) step (`RENAME`), which ends them all at
/// once, and their keys are deleted afterwards in small batches (`reap`), so Redis is never held
/// for long.
enum Scripts {
    /// Helpers prepended to every script (Redis scripts cannot share functions otherwise).
    private static let prelude = """
        -- Live tokens one session may hold (SessionStore.maxTokensPerSession).
        local tokenCap = \(SessionStore.maxTokensPerSession)
        -- Redis's clock: whole seconds, and milliseconds.
        local function clock()
          local t = redis.call('TIME')
          local s = tonumber(t[1])
          return s, s * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        local function nowMs() local _, ms = clock(); return ms end
        -- Deletes a session hash and every token key it lists (fields 't:<jti>').
        local function dropSession(skey, tprefix)
          for _, f in ipairs(redis.call('HKEYS', skey)) do
            if string.sub(f, 1, 2) == 't:' then redis.call('DEL', tprefix .. string.sub(f, 3)) end
          end
          redis.call('DEL', skey)
        end
        -- Forgets index entries whose session has expired; the index lives as long as its last
        -- entry. Scores are the sessions' expiry in Unix ms (ms: Redis's time now).
        local function tidyIndex(index, ms)
          redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. ms)
          local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
          if #last == 0 then redis.call('DEL', index)
          else redis.call('PEXPIRE', index, math.max(1, tonumber(last[2]) - ms)) end
        end
        -- A live token's key holds '1' (a shared integer in Redis: the key costs no value object;
        -- the signed token names its session). Once rotated (per-request rotation) it holds
        -- '<rotated at, Unix ms> <successor token>' for the rest of its life. Keys written by
        -- earlier versions hold the session id, or '<sid> <at> <successor>', and are read alike.
        -- Returns 1 (live), 2 (rotated; then the time and the successor) or 0 (gone).
        local function tokenState(tkey, sid)
          local v = redis.call('GET', tkey)
          if v == '1' or v == sid then return 1 end
          if not v then return 0 end
          local at, successor = string.match(v, '(%d+) (%S+)$')
          if not at then return 0 end
          return 2, tonumber(at), successor
        end
        -- Is the token (key tkey) live, and its session sid listed in the user's index? Returns the
        -- token's state (0 when either is not).
        local function liveToken(tkey, index, sid)
          local state, at, successor = tokenState(tkey, sid)
          if state == 0 or not redis.call('ZSCORE', index, sid) then return 0 end
          return state, at, successor
        end
        -- Is the token (key tkey, session sid) live in session skey? Returns code, last-seen and,
        -- for a rotated token inside its grace window, its successor. A rotated token used after
        -- the window (graceMs) is a replay of a consumed token: code -3.
        local function check(tkey, skey, index, sid, idle, maxAge, t, ms, graceMs)
          local state, at, successor = liveToken(tkey, index, sid)
          if state == 0 then return 0, 0 end
          if state == 2 and ms - at > graceMs then return -3, 0 end
          local s = redis.call('HMGET', skey, 'created', 'seen')
          if not s[1] or not s[2] then return 0, 0 end
          local seen = tonumber(s[2])
          if t - tonumber(s[1]) >= maxAge then return -2, seen end
          if t - seen >= idle then return -1, seen end
          return 1, seen, successor
        end
        -- Ends a session: its hash, its tokens and its index entry.
        local function endSession(skey, index, sid, tprefix, ms)
          dropSession(skey, tprefix)
          redis.call('ZREM', index, sid)
          tidyIndex(index, ms)
        end
        -- The token (key tkey, session sid, its hash skey) for an ending route (logout, logout-all,
        -- close): its state, as `liveToken`; or -3 when it was rotated out longer ago than graceMs,
        -- a replay of a spent token, which ends its session (and only that) as `check` does.
        local function spendable(tkey, skey, index, sid, tprefix, graceMs)
          local state, at = liveToken(tkey, index, sid)
          if state == 2 then
            local ms = nowMs()
            if ms - at > graceMs then
              endSession(skey, index, sid, tprefix, ms)
              return -3
            end
          end
          return state
        end
        -- Must a session that is otherwise live end because of the users file? cred is the
        -- fingerprint of its user's password hash in the file now ('' when the user is not in it).
        -- A password session ends when its user is gone or its recorded credential ('cred') differs:
        -- the password was changed. One the service API started ('via') does not depend on the file;
        -- one written by an earlier version (no 'cred') ends only when its user is gone.
        local function credentialEnded(skey, cred)
          local s = redis.call('HMGET', skey, 'via', 'cred')
          if s[1] then return false end
          return cred == '' or (s[2] and s[2] ~= cred)
        end
        -- Adds token jti (key tkey) to session sid and restarts the session's TTL. Expired token
        -- fields are forgotten only when the hash has doubled since the last clean-up ('n' is the
        -- number of fields then): amortised O(1) per token however many are live. A session holds
        -- at most `cap` live tokens: beyond it the oldest are retired (their keys deleted), so no
        -- client can make one session, or any script that walks it, grow without bound.
        local function addToken(skey, index, tkey, sid, jti, ttl, t, ms, tprefix, cap)
          local size = redis.call('HLEN', skey)
          -- Besides its tokens a session hash has 4 to 6 fields (created, seen, ua, ip; n, via).
          if size > 2 * tonumber(redis.call('HGET', skey, 'n') or '0') + 8 or size >= cap + 4 then
            local fields = redis.call('HGETALL', skey)
            local live = {}
            for i = 1, #fields, 2 do
              if string.sub(fields[i], 1, 2) == 't:' then
                local expiry = tonumber(fields[i + 1])
                if expiry <= ms then
                  redis.call('HDEL', skey, fields[i])
                  size = size - 1
                else
                  live[#live + 1] = {expiry, fields[i]}
                end
              end
            end
            if #live >= cap then
              table.sort(live, function(a, b) return a[1] < b[1] end)
              for i = 1, #live - cap + 1 do
                redis.call('HDEL', skey, live[i][2])
                redis.call('DEL', tprefix .. string.sub(live[i][2], 3))
                size = size - 1
              end
            end
            redis.call('HSET', skey, 'n', size)
          end
          redis.call('HSET', skey, 't:' .. jti, ms + ttl * 1000)
          redis.call('EXPIRE', skey, ttl)
          redis.call('SET', tkey, 1, 'EX', ttl)
          redis.call('ZADD', index, ms + ttl * 1000, sid)
          tidyIndex(index, ms)
        end
        -- Deletes the keys of sessions sids, in order, 500 keys per UNLINK instead of one DEL per
        -- key, until `budget` keys are deleted (a session is never split; the first is always
        -- taken). Returns how many sessions it took.
        local function dropSessions(sids, sprefix, tprefix, budget)
          local batch, deleted, taken = {}, 0, 0
          for _, sid in ipairs(sids) do
            if taken > 0 and deleted + #batch >= budget then break end
            local skey = sprefix .. sid
            for _, f in ipairs(redis.call('HKEYS', skey)) do
              if string.sub(f, 1, 2) == 't:' then batch[#batch + 1] = tprefix .. string.sub(f, 3) end
            end
            batch[#batch + 1] = skey
            taken = taken + 1
            if #batch >= 500 then
              redis.call('UNLINK', unpack(batch))
              deleted = deleted + #batch
              batch = {}
            end
          end
          if #batch > 0 then redis.call('UNLINK', unpack(batch)) end
          return taken
        end
        -- Ends every session in a user's index. Up to `inline` sessions holding up to `budget`
        -- keys are deleted here and now; more would hold Redis too long (100 sessions of 64
        -- tokens are 6,500 keys), so the index is renamed to `ended` (ending them all at once:
        -- verify finds them in no index) and `reap` deletes their keys afterwards, `budget` keys a
        -- call. Returns {sessions ended, 1 when their keys are left to reap else 0}.
        local function endAll(index, ended, sprefix, tprefix, inline, budget)
          local n = redis.call('ZCARD', index)
          local sids = {}
          local keys = 0
          if n <= inline then
            sids = redis.call('ZRANGE', index, 0, -1)
            for _, sid in ipairs(sids) do keys = keys + 1 + redis.call('HLEN', sprefix .. sid) end
          end
          if n > inline or keys > budget then
            redis.call('RENAME', index, ended)
            return {n, 1}
          end
          dropSessions(sids, sprefix, tprefix, keys + 1)
          redis.call('UNLINK', index)
          return {n, 0}
        end

        """

    private static func script(_ name: String, _ body: String) -> RedisScript {
        RedisScript(name: name, source: prelude + body)
    }

    /// KEYS: session, token, index. ARGV: sid, jti, ttl, user agent, address, session cap (0: none),
    /// session prefix, token prefix, the service key that started the session (empty for a
    /// password login; else kept in the field 'via') and the fingerprint of the user's password
    /// hash (a password login; kept in the field 'cred'). At the cap, the sessions closest to expiry
    /// (the least recently refreshed) end first. Returns Redis's time.
    static let login = script(
        "login",
        """
        local t, ms = clock()
        local ttl = tonumber(ARGV[3])
        local cap = tonumber(ARGV[6])
        if cap > 0 then
          redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ms)
          local extra = redis.call('ZCARD', KEYS[3]) - cap + 1
          if extra > 0 then
            for _, sid in ipairs(redis.call('ZRANGE', KEYS[3], 0, extra - 1)) do
              dropSession(ARGV[7] .. sid, ARGV[8])
              redis.call('ZREM', KEYS[3], sid)
            end
          end
        end
        redis.call('HSET', KEYS[1], 'created', t, 'seen', t, 'ua', ARGV[4], 'ip', ARGV[5], 't:' .. ARGV[2], ms + ttl * 1000)
        if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'via', ARGV[9]) end
        if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'cred', ARGV[10]) end
        redis.call('EXPIRE', KEYS[1], ttl)
        redis.call('SET', KEYS[2], 1, 'EX', ttl)
        redis.call('ZADD', KEYS[3], ms + ttl * 1000, ARGV[1])
        tidyIndex(KEYS[3], ms)
        return t
        """
    )

    /// The hot path. KEYS: token, session, index. ARGV: sid, activity (1/0), idle, max age, token
    /// prefix, reuse grace (ms). Returns the check code; a session failing its check ends on the spot.
    static let verify = script(
        "verify",
        """
        local t, ms = clock()
        local r, seen = check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4]), t, ms, tonumber(ARGV[6]))
        if r < 0 then
          endSession(KEYS[2], KEYS[3], ARGV[1], ARGV[5], ms)
        elseif r == 1 and ARGV[2] == '1' and seen < t then
          redis.call('HSET', KEYS[2], 'seen', t)
        end
        return r
        """
    )

    /// KEYS: token, session, index, new token. ARGV: sid, new jti, ttl, idle, max age, token prefix,
    /// reuse grace (ms), and the user's credential in the users file now ('' when the user is not
    /// in it). Checks like `verify` (without counting as activity), then adds the new token and
    /// restarts the session's TTL (undoing a close). The old token stays valid until it expires. A
    /// password session whose user left the users file or changed password ends here (code 0,
    /// `credentialEnded`); one the service API started ('via') lives on.
    static let refresh = script(
        "refresh",
        """
        local t, ms = clock()
        local r = check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5]), t, ms, tonumber(ARGV[7]))
        if r == 1 and credentialEnded(KEYS[2], ARGV[8]) then r = -4 end
        if r < 0 then endSession(KEYS[2], KEYS[3], ARGV[1], ARGV[6], ms) end
        if r == -4 then return 0 end
        if r ~= 1 then return r end
        addToken(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], tonumber(ARGV[3]), t, ms, ARGV[6], tokenCap)
        return 1
        """
    )

    /// Per-request rotation (README, "Per-request rotation"). KEYS: token, session, index, successor's key.
    /// ARGV: sid, successor's jti, ttl, idle, max age, token prefix, reuse grace (ms), activity (1/0),
    /// successor token, and the user's credential in the users file now (as in `refresh`). The
    /// first use of a token stores `successor` in the token's key and adds it to the session; every
    /// use inside the grace window gets that same successor back; a use after it ends the session
    /// (code -3). Returns `{code}` or `{1, successor}`.
    static let rotate = script(
        "rotate",
        """
        local t, ms = clock()
        local r, seen, successor = check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5]), t, ms, tonumber(ARGV[7]))
        if r == 1 and credentialEnded(KEYS[2], ARGV[10]) then r = -4 end
        if r < 0 then endSession(KEYS[2], KEYS[3], ARGV[1], ARGV[6], ms) end
        if r == -4 then return {0} end
        if r ~= 1 then return {r} end
        if ARGV[8] == '1' and seen < t then redis.call('HSET', KEYS[2], 'seen', t) end
        if successor then return {1, successor} end
        addToken(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], tonumber(ARGV[3]), t, ms, ARGV[6], tokenCap)
        -- XX: the cap may just have retired the parent itself; never recreate it without a TTL.
        redis.call('SET', KEYS[1], ms .. ' ' .. ARGV[9], 'XX', 'KEEPTTL')
        return {1, ARGV[9]}
        """
    )

    /// KEYS: token, session, index. ARGV: sid, token prefix, reuse grace (ms). Deletes the session
    /// and all its tokens. Returns 1, 0 (the token was not live) or -3 (a spent token replayed).
    static let logout = script(
        "logout",
        """
        local state = spendable(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], tonumber(ARGV[3]))
        if state <= 0 then return state end
        endSession(KEYS[2], KEYS[3], ARGV[1], ARGV[2], nowMs())
        return 1
        """
    )

    /// KEYS: token, index, ended (a fresh name for the index). ARGV: sid, session prefix, token
    /// prefix, inline limit, reuse grace (ms), key budget. Ends every session of the user (`endAll`). Returns
    /// `{0, 0}` when the token was not live, `{-3, 0}` for a replayed spent token (only its own
    /// session ends), else `{sessions, 1 when their keys are left to reap}`.
    static let logoutAll = script(
        "logout_all",
        """
        local state = spendable(KEYS[1], ARGV[2] .. ARGV[1], KEYS[2], ARGV[1], ARGV[3], tonumber(ARGV[5]))
        if state <= 0 then return {state, 0} end
        return endAll(KEYS[2], KEYS[3], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[6]))
        """
    )

    /// KEYS: index, ended. ARGV: session prefix, token prefix, inline limit, key budget. Operator
    /// revocation of every session (`endAll`).
    static let revokeAll = script(
        "revoke_all",
        "return endAll(KEYS[1], KEYS[2], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))"
    )

    /// KEYS: an ended index (see `endAll`). ARGV: session prefix, token prefix, batch, key budget.
    /// Deletes the keys of up to `batch` of its sessions, and of fewer when they hold more than
    /// `budget` keys; returns how many sessions are left (the key goes with the last).
    static let reap = script(
        "reap",
        """
        local sids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
        if #sids == 0 then return 0 end
        local taken = dropSessions(sids, ARGV[1], ARGV[2], tonumber(ARGV[4]))
        redis.call('ZREMRANGEBYRANK', KEYS[1], 0, taken - 1)
        return redis.call('ZCARD', KEYS[1])
        """
    )

    /// KEYS: session, index. ARGV: sid, token prefix. Returns 1 when the session existed.
    static let revokeSession = script(
        "revoke_session",
        """
        local existed = redis.call('EXISTS', KEYS[1])
        endSession(KEYS[1], KEYS[2], ARGV[1], ARGV[2], nowMs())
        return existed
        """
    )

    /// KEYS: token, session, index. ARGV: sid, grace, token prefix, jti, reuse grace (ms). The page is
    /// closing: every key of the session now lives at most `grace` seconds; a refresh within that
    /// time restores it. Returns 1, 0 (not live) or -3 (a spent token replayed: the session ended).
    /// When the session already holds a newer token than the closing one (a reloaded page refreshed
    /// before this beacon arrived), the page that holds it is alive and nothing changes.
    static let close = script(
        "close",
        """
        local state = spendable(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[3], tonumber(ARGV[5]))
        if state <= 0 then return state end
        if state == 2 then return 1 end
        local ms = nowMs()
        local g = tonumber(ARGV[2])
        local fields = redis.call('HGETALL', KEYS[2])
        local mine = tonumber(redis.call('HGET', KEYS[2], 't:' .. ARGV[4]) or '0')
        for i = 1, #fields, 2 do
          if string.sub(fields[i], 1, 2) == 't:' and tonumber(fields[i + 1]) > mine then return 1 end
        end
        for i = 1, #fields, 2 do
          if string.sub(fields[i], 1, 2) == 't:' then redis.call('EXPIRE', ARGV[3] .. string.sub(fields[i], 3), g, 'LT') end
        end
        redis.call('EXPIRE', KEYS[2], g, 'LT')
        redis.call('ZADD', KEYS[3], 'XX', 'LT', ms + g * 1000, ARGV[1])
        tidyIndex(KEYS[3], ms)
        return 1
        """
    )

    /// KEYS: index. ARGV: session prefix, token prefix, '1' to list tokens. Returns Redis's time,
    /// then per live session `{sid, ttl, {created, seen, ua, ip}, {jti, ttl, ...}}`; a session's
    /// TTL is its index score (its expiry, which every script sets with the hash's). The token list
    /// (`tokengate sessions`) is an operator's: one `TTL` per token. Without it (every HTTP route)
    /// the cost per call is one `HMGET` per session, whatever the sessions hold: at the caps
    /// (`MAX_SESSIONS` × `maxTokensPerSession`) it stays far below the Redis timeout.
    static let sessions = script(
        "sessions",
        """
        local t, ms = clock()
        tidyIndex(KEYS[1], ms)
        local out = {t}
        local index = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
        for i = 1, #index, 2 do
          local sid = index[i]
          local skey = ARGV[1] .. sid
          local s = redis.call('HMGET', skey, 'created', 'seen', 'ua', 'ip')
          if s[1] then
            local tokens = {}
            if ARGV[3] == '1' then
              for _, f in ipairs(redis.call('HKEYS', skey)) do
                if string.sub(f, 1, 2) == 't:' then
                  local jti = string.sub(f, 3)
                  local ttl = redis.call('TTL', ARGV[2] .. jti)
                  if ttl ~= -2 then tokens[#tokens + 1] = jti; tokens[#tokens + 1] = ttl end
                end
              end
            end
            local ttl = math.floor((tonumber(index[i + 1]) - ms + 500) / 1000)
            out[#out + 1] = {sid, ttl, {s[1], s[2] or '', s[3] or '', s[4] or ''}, tokens}
          end
        end
        return out
        """
    )

    /// KEYS: counter. ARGV: limit, window. Counts one failure (a wrong service key). Returns 0 while
    /// the count is within the limit, else the seconds until it is again (that failure is not
    /// counted). The window starts at the first counted failure.
    static let countAttempt = script(
        "count_attempt",
        """
        local n = redis.call('INCR', KEYS[1])
        if n == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
        if n <= tonumber(ARGV[1]) then return 0 end
        redis.call('DECR', KEYS[1])
        return math.max(1, redis.call('TTL', KEYS[1]))
        """
    )

    /// One of a login's failed-login counters (`docs/security.md`): a hash with the failures of its
    /// window ('f') and one field per attempt whose password is being checked right now (the
    /// attempt's id, valued with the Unix ms at which it is forgotten: an instance that died or lost
    /// Redis during the check never gives it back). A login may go ahead while failures plus attempts
    /// in flight are under the limit, so parallel guesses can never check more passwords than the
    /// limit allows; an attempt that finds every slot taken by attempts in flight waits for one (a
    /// correct password gives its slot back at once), instead of being refused for failures that did
    /// not happen. An attempt's slot is named by its id, so taking it again or giving it back again
    /// (a retry after a failure whose outcome is unknown) changes nothing.
    /// KEYS: counter. ARGV: limit, window (s), stale (ms: how long the slot is held at most), the
    /// attempt's id. Returns {0} (go ahead: the attempt holds a slot), {1, seconds} (refused: the
    /// window's failures reached the limit) or {2} (wait).
    static let loginBegin = script(
        "login_begin",
        """
        local _, ms = clock()
        local s = redis.call('HGETALL', KEYS[1])
        local f, held, gone, mine = 0, 0, {}, false
        for n = 1, #s, 2 do
          if s[n] == 'f' then f = tonumber(s[n + 1]) or 0
          elseif (tonumber(s[n + 1]) or 0) > ms then
            held = held + 1
            if s[n] == ARGV[4] then mine = true end
          else gone[#gone + 1] = s[n] end
        end
        if #gone > 0 then redis.call('HDEL', KEYS[1], unpack(gone)) end
        if mine then return {0} end
        if f >= tonumber(ARGV[1]) then return {1, math.max(1, redis.call('TTL', KEYS[1]))} end
        if f + held >= tonumber(ARGV[1]) then return {2} end
        redis.call('HSET', KEYS[1], ARGV[4], string.format('%d', ms + tonumber(ARGV[3])))
        if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
        return {0}
        """
    )

    /// KEYS: counter. ARGV: '1' when the password was wrong, window (s), the attempt's id. Gives back
    /// the slot `loginBegin` took; a failure is counted instead (its window starting at the first
    /// failure), once: sent again, it finds the slot gone and changes nothing. A counter left with no
    /// failure and nothing in flight is gone (an empty hash).
    static let loginEnd = script(
        "login_end",
        """
        if redis.call('HDEL', KEYS[1], ARGV[3]) == 1 and ARGV[1] == '1' then
          if redis.call('HINCRBY', KEYS[1], 'f', 1) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
        end
        return 0
        """
    )
}
