-- An nginx + ngx_lua front doing TokenGate's `GET /auth/verify` check, for bench/run only.
--
-- Per request: `Authorization: Bearer <jwt>` parsed as HeaderParsing.bearer does, the token
-- verified by tokengate_check.lua (TokenVerifier's rules), then TokenGate's own `verify` script
-- (Scripts.verify with its prelude, run by its SHA1: TokenGate loaded it into this Redis) with the
-- KEYS and ARGV that SessionStore.verifyCall passes. 200 with X-Auth-User / X-Auth-Session when the
-- script answers 1, else 401; a Redis failure is 503, as in TokenGate.
--
-- Two ways to reach Redis:
--   pooled():  lua-resty-redis with a cosocket keepalive pool; one EVALSHA round trip per request
--              on a connection of its own (the usual deployment).
--   batched(): the request queues its EVALSHA for its worker and sleeps on a semaphore; one timer
--              per worker (one connection) sends everything queued in ONE write (a pipeline),
--              reads the replies in order and wakes each request. Requests that arrive while a
--              batch is in flight go in the next one.
local check = require "tokengate_check"
local redis = require "nginx.redis" -- Debian's lua-nginx-redis (lua-resty-redis)
local semaphore = require "ngx.semaphore"

local ngx = ngx
local sub, find, lower = string.sub, string.find, string.lower

local _M = {}

local cfg -- set by init()

-- opts: key_file, issuer, audience, token_ttl, leeway, idle, max_age, grace (s), prefix,
-- redis_host, redis_port, sha (the verify script's SHA1).
function _M.init(opts)
  cfg = opts
  cfg.grace_ms = tostring(tonumber(opts.grace) * 1000) -- Limits.graceMilliseconds
  cfg.idle = tostring(opts.idle)
  cfg.max_age = tostring(opts.max_age)
  assert(find(cfg.sha, "^%x+$") and #cfg.sha == 40, "sha must be 40 hex digits")
  check.configure(opts)
end

-- The EVALSHA arguments of SessionStore.verifyCall: KEYS token, session, index (KeyLayout);
-- ARGV sid, activity ('1': /auth/verify counts as activity in FastPathHandler), idle, max age,
-- token prefix, reuse grace (ms).
local function script_args(c)
  local root = cfg.prefix .. "{" .. c.user .. "}"
  local tprefix = root .. ":t:"
  return tprefix .. c.jti, root .. ":s:" .. c.sid, root .. ":sessions",
    c.sid, "1", cfg.idle, cfg.max_age, tprefix, cfg.grace_ms
end

-- Answers -------------------------------------------------------------------------------------

local MESSAGES = {
  missing_token = "a bearer token is required",
  token_expired = "the token has expired",
  token_revoked = "the token is no longer valid (logged out, replaced or idle)",
  session_expired = "the session reached its maximum age; log in again",
  store_unavailable = "the session store is unavailable; try again",
}

local function refuse(code, reason)
  local status = code == "store_unavailable" and 503 or 401
  ngx.status = status
  local h = ngx.header
  h["Content-Type"] = "application/json"
  h["Cache-Control"] = "no-store"
  if code == "missing_token" then
    h["WWW-Authenticate"] = 'Bearer realm="tokengate"'
  elseif status == 401 then
    h["WWW-Authenticate"] = 'Bearer realm="tokengate", error="invalid_token"'
  end
  local message = code == "invalid_token" and ("the token is invalid: " .. reason) or MESSAGES[code]
  local body = '{"error":"' .. code .. '","message":"' .. message .. '"}'
  h["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(status)
end

local function accept(c)
  local h = ngx.header
  h["X-Auth-User"] = c.user
  h["X-Auth-Session"] = c.sid
  h["Cache-Control"] = "no-store"
  h["Content-Length"] = 0
  ngx.status = 200
  return ngx.exit(200)
end

-- SessionStore.Check: 1 accepted; -2 too old (session_expired); anything else revoked.
local function answer(c, reply, err)
  if not reply or (type(reply) == "table" and reply[1] == false) then
    -- No reply (nil), or an error reply (false, or {false, err} in a pipeline; e.g. NOSCRIPT):
    -- TokenGate fails closed with 503.
    if err then ngx.log(ngx.ERR, "redis: ", err) end
    return refuse("store_unavailable")
  end
  if reply == 1 then return accept(c) end
  if reply == -2 then return refuse("session_expired") end
  return refuse("token_revoked")
end

-- The token of the request, as HeaderParsing.bearer: no Authorization header -> missing_token,
-- another scheme -> missing_token, "Bearer" (any case) + spaces + one word -> the token. (Two
-- Authorization headers never get here: nginx itself answers 400, where TokenGate answers 401.)
local function claims_of_request()
  if ngx.req.get_method() ~= "GET" then return ngx.exit(404) end
  local value = ngx.var.http_authorization
  if value == nil then return refuse("missing_token") end
  if #value <= 7 or lower(sub(value, 1, 6)) ~= "bearer" or sub(value, 7, 7) ~= " " then
    return refuse("missing_token")
  end
  local start = find(value, "[^ ]", 8)
  if not start or find(value, " ", start, true) then return refuse("invalid_token", "malformed header") end
  local c, code, reason = check.verify(sub(value, start), ngx.time())
  if not c then return refuse(code, reason) end
  return c
end

-- Variant 1: pooled ------------------------------------------------------------------------------

function _M.pooled()
  local c = claims_of_request()
  local red = redis:new()
  red:set_timeout(1000) -- TOKENGATE_REDIS_TIMEOUT's default, 1 s
  local ok, err = red:connect(cfg.redis_host, cfg.redis_port)
  if not ok then return answer(c, nil, err) end
  local reply
  reply, err = red:evalsha(cfg.sha, 3, script_args(c))
  if reply ~= nil then
    red:set_keepalive(60000, 256)
  else
    red:close()
  end
  return answer(c, reply, err)
end

-- Variant 2: batched -------------------------------------------------------------------------------
--
-- The commands are written as RESP by hand and the replies read by hand (the verify script
-- answers an integer, or an error reply): lua-resty-redis's pipeline builds a table of 66 pieces per
-- command and a varargs table, which cost more than the whole batching saves.

local tconcat = table.concat
local queue, queued = {}, 0 -- this worker's waiting requests: { cmd = RESP, sema, reply, err }
-- Posted when the drainer sleeps and a request arrives. Made per worker (init_worker): a
-- semaphore made in init_by_lua belongs to the master's cycle, and crashes a worker after a reload.
local wake
local sleeping = false
local idle_semaphores = {} -- reused (only ones whose wait succeeded: their count is back at 0)
local resp_head -- "*12\r\n$7\r\nEVALSHA\r\n$40\r\n<sha>\r\n$1\r\n3\r\n"

-- EVALSHA sha 3 KEYS... ARGV... as one RESP string.
local function resp_command(...)
  local parts, n = { resp_head }, 1
  for i = 1, select("#", ...) do
    local arg = select(i, ...)
    parts[n + 1] = "$"
    parts[n + 2] = #arg
    parts[n + 3] = "\r\n"
    parts[n + 4] = arg
    parts[n + 5] = "\r\n"
    n = n + 5
  end
  return tconcat(parts, "", 1, n)
end

local function fail_all(batch, from, n, err)
  for i = from, n do
    local item = batch[i]
    item.err = err
    item.sema:post(1)
  end
end

local function drain(premature)
  if premature then return end
  local sock
  local commands = {}
  while not ngx.worker.exiting() do
    if queued == 0 then
      sleeping = true
      wake:wait(1)
      sleeping = false
    end
    if queued > 0 then
      local batch, n = queue, queued
      queue, queued = {}, 0
      local err
      if not sock then
        sock = ngx.socket.tcp()
        sock:settimeout(1000) -- TOKENGATE_REDIS_TIMEOUT's default, 1 s
        local ok
        ok, err = sock:connect(cfg.redis_host, cfg.redis_port)
        if not ok then sock = nil end
      end
      if not sock then
        fail_all(batch, 1, n, err)
      else
        for i = 1, n do commands[i] = batch[i].cmd end
        for i = n + 1, #commands do commands[i] = nil end
        -- One write of all n commands (a pipeline), then the n replies in order.
        local sent
        sent, err = sock:send(commands)
        local i = 1
        if sent then
          while i <= n do
            local line
            line, err = sock:receive("*l")
            if not line then break end
            local item = batch[i]
            local kind = sub(line, 1, 1)
            if kind == ":" then
              item.reply = tonumber(sub(line, 2))
            elseif kind == "-" then
              item.reply, item.err = false, sub(line, 2)
            else
              err = "unexpected reply " .. line -- the verify script answers integers only
              break
            end
            item.sema:post(1)
            i = i + 1
          end
        end
        if i <= n then
          sock:close()
          sock = nil
          fail_all(batch, i, n, err)
        end
      end
    end
  end
end

function _M.init_worker()
  check.init_worker()
  wake = semaphore.new(0)
  resp_head = "*12\r\n$7\r\nEVALSHA\r\n$40\r\n" .. cfg.sha .. "\r\n$1\r\n3\r\n"
  local ok, err = ngx.timer.at(0, drain)
  if not ok then ngx.log(ngx.ERR, "cannot start the batch drainer: ", err) end
end

function _M.batched()
  local c = claims_of_request()
  local n = #idle_semaphores
  local sema = idle_semaphores[n]
  if sema then idle_semaphores[n] = nil else sema = semaphore.new(0) end
  local item = { cmd = resp_command(script_args(c)), sema = sema }
  queued = queued + 1
  queue[queued] = item
  if sleeping then
    sleeping = false
    wake:post(1)
  end
  local ok = sema:wait(2) -- a batch waits at most the Redis timeout (1 s) per step
  if not ok then return answer(c, nil, "batch timed out") end
  idle_semaphores[#idle_semaphores + 1] = sema
  return answer(c, item.reply, item.err)
end

return _M
