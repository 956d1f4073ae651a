-- The token check of TokenGate's TokenVerifier (Sources/TokenGate/Tokens/TokenVerifier.swift), in
-- Lua for the benchmark's nginx front: the key file as SigningKey.parseList reads it (HS256 lines
-- only), the header allow-list, the HS256 signature (libcrypto's HMAC through LuaJIT's FFI,
-- compared in constant time), strict base64url, a strict JSON parser (StrictJSON.swift's rules) and
-- the same claim rules. No I/O: `verify` returns the claims or (nil, error code, reason).
local ffi = require "ffi"
local base64 = require "ngx.base64"

local byte, char, sub, find, lower, concat = string.byte, string.char, string.sub, string.find, string.lower, table.concat
local encode_base64url, decode_base64url = base64.encode_base64url, base64.decode_base64url

ffi.cdef [[
typedef struct evp_md_st EVP_MD;
typedef struct hmac_ctx_st HMAC_CTX;
typedef struct engine_st ENGINE;
const EVP_MD *EVP_sha256(void);
HMAC_CTX *HMAC_CTX_new(void);
int HMAC_Init_ex(HMAC_CTX *ctx, const void *key, int len, const EVP_MD *md, ENGINE *impl);
int HMAC_Update(HMAC_CTX *ctx, const unsigned char *data, size_t len);
int HMAC_Final(HMAC_CTX *ctx, unsigned char *md, unsigned int *len);
int CRYPTO_memcmp(const void *a, const void *b, size_t len);
unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);
]]

-- nginx links libcrypto, so its symbols are in the process already; else load it.
local crypto = ffi.C
if not pcall(function() return crypto.HMAC_CTX_new end) then crypto = ffi.load("libcrypto.so.3") end

local mac_out = ffi.new("unsigned char[32]")
local mac_len = ffi.new("unsigned int[1]")

local _M = {}

-- Rules, set by `configure` (TokenGate's settings: TOKENGATE_ISSUER, _AUDIENCE, _TOKEN_TTL,
-- _CLOCK_LEEWAY).
local issuer, audience, token_ttl, leeway = "tokengate", nil, 30, 2
-- kid -> { secret = bytes, ctx = keyed HMAC_CTX (made per worker) }
local keys, key_count = {}, 0
-- The header segments TokenGate writes itself (every member order of {"alg","typ","kid"}) -> key.
local known_headers = {}

local function hex_prefix6(digest)
  local out = {}
  for i = 0, 5 do out[#out + 1] = string.format("%02x", digest[i]) end
  return concat(out)
end

local function trim(s)
  -- SigningKey.parseList trims " \t\r" on both ends.
  return (s:gsub("^[ \t\r]+", ""):gsub("[ \t\r]+$", ""))
end

-- Reads a key file as SigningKey.parseList does. Only HS256 keys are supported here (the bench
-- uses `tokengate key generate`, which writes one HS256 line); an EdDSA or ES256 line is an error.
-- The HMAC key is the line's bytes themselves (after an optional "HS256:"), not their base64url
-- decoding, exactly as SigningKey(hs256:) takes `Array(line.utf8)`.
function _M.configure(opts)
  issuer = assert(opts.issuer)
  audience = opts.audience
  token_ttl = assert(tonumber(opts.token_ttl))
  leeway = assert(tonumber(opts.leeway))
  local file = assert(io.open(opts.key_file, "rb"))
  local text = file:read("*a")
  file:close()
  local number = 0
  for raw in (text .. "\n"):gmatch("([^\n]*)\n") do
    number = number + 1
    local line = trim(raw)
    if line ~= "" and sub(line, 1, 1) ~= "#" then
      if sub(line, 1, 6) == "EdDSA:" or sub(line, 1, 6) == "ES256:" then
        error("key file line " .. number .. ": only HS256 keys are supported by this front")
      end
      local secret = sub(line, 1, 6) == "HS256:" and sub(line, 7) or line
      if #secret < 32 then error("key file line " .. number .. ": must be at least 32 bytes") end
      local digest = ffi.new("unsigned char[32]")
      crypto.SHA256(secret, #secret, digest)
      local kid = hex_prefix6(digest)
      if keys[kid] then error("the same key is listed twice") end
      keys[kid] = { secret = secret }
      key_count = key_count + 1
    end
  end
  if key_count == 0 then error("no key found") end
  -- The fast path of TokenVerifier: TokenGate's own header segments for each key.
  for kid, key in pairs(keys) do
    local members = { '"alg":"HS256"', '"typ":"JWT"', '"kid":"' .. kid .. '"' }
    for _, order in ipairs { { 1, 2, 3 }, { 1, 3, 2 }, { 2, 1, 3 }, { 2, 3, 1 }, { 3, 1, 2 }, { 3, 2, 1 } } do
      local json = "{" .. members[order[1]] .. "," .. members[order[2]] .. "," .. members[order[3]] .. "}"
      known_headers[encode_base64url(json)] = key
    end
  end
end

-- Per worker: one keyed HMAC context per key (the pads hashed once; reset per check, as
-- TokenVerifier copies its keyed HMAC).
function _M.init_worker()
  for _, key in pairs(keys) do
    key.ctx = crypto.HMAC_CTX_new()
    assert(crypto.HMAC_Init_ex(key.ctx, key.secret, #key.secret, crypto.EVP_sha256(), nil) == 1)
  end
end

-- Strict base64url (Base64URL.decode): no padding, only the alphabet, no impossible length, and
-- leftover bits zero (one spelling per byte string). nginx's own decoder is lenient about all of
-- these, so they are checked first.
local B64 = {}
do
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  for i = 1, 64 do B64[byte(alphabet, i)] = i - 1 end
end

local function b64_strict(segment)
  local n = #segment
  local r = n % 4
  if r == 1 or find(segment, "[^A-Za-z0-9_%-]") then return nil end
  if r == 2 and B64[byte(segment, n)] % 16 ~= 0 then return nil end
  if r == 3 and B64[byte(segment, n)] % 4 ~= 0 then return nil end
  if n == 0 then return "" end
  return decode_base64url(segment)
end

-- Strict JSON (StrictJSON.swift): duplicate member names, invalid UTF-8, lone surrogates, control
-- characters in strings, trailing bytes and nesting deeper than a limit are refused. Strings are
-- Lua strings; numbers keep their exact text (NUMBER); null is NULL; arrays and objects are tables
-- marked by their metatable.
local NUMBER, ARRAY, OBJECT = {}, {}, {}
local NULL = setmetatable({}, { __tostring = function() return "null" end })
_M.NULL = NULL

local function skip(s, i)
  local _, e = find(s, "^[ \n\r\t]*", i)
  return e + 1
end

local function utf8_valid(s)
  local i, n = 1, #s
  while i <= n do
    local c = byte(s, i)
    if c < 0x80 then
      i = i + 1
    elseif c >= 0xC2 and c <= 0xDF then
      if i + 1 > n then return false end
      local c2 = byte(s, i + 1)
      if c2 < 0x80 or c2 > 0xBF then return false end
      i = i + 2
    elseif c >= 0xE0 and c <= 0xEF then
      if i + 2 > n then return false end
      local c2, c3 = byte(s, i + 1, i + 2)
      local lo, hi = 0x80, 0xBF
      if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end -- no overlong, no surrogate
      if c2 < lo or c2 > hi or c3 < 0x80 or c3 > 0xBF then return false end
      i = i + 3
    elseif c >= 0xF0 and c <= 0xF4 then
      if i + 3 > n then return false end
      local c2, c3, c4 = byte(s, i + 1, i + 3)
      local lo, hi = 0x80, 0xBF
      if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end -- no overlong, <= U+10FFFF
      if c2 < lo or c2 > hi or c3 < 0x80 or c3 > 0xBF or c4 < 0x80 or c4 > 0xBF then return false end
      i = i + 4
    else
      return false
    end
  end
  return true
end

local function utf8_encode(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64, 0x80 + math.floor(cp / 64) % 64,
    0x80 + cp % 64)
end

local ESCAPES = { [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n", [114] = "\r", [116] = "\t" }

local function hex4(s, i)
  local h = sub(s, i, i + 3)
  if not find(h, "^%x%x%x%x$") then return nil end
  return tonumber(h, 16)
end

local function parse_string(s, i)
  i = i + 1 -- the opening quote
  -- The usual string: printable ASCII, no escape.
  local e = find(s, '[%z\1-\31"\\\128-\255]', i)
  if e and byte(s, e) == 34 then return sub(s, i, e - 1), e + 1 end
  local out, n = {}, 0
  while true do
    local p = find(s, '[%z\1-\31"\\]', i)
    if not p then return nil, "unterminated string" end
    if p > i then
      n = n + 1
      out[n] = sub(s, i, p - 1)
    end
    local c = byte(s, p)
    if c == 34 then
      local text = concat(out, "", 1, n)
      if not utf8_valid(text) then return nil, "invalid UTF-8" end
      return text, p + 1
    elseif c == 92 then
      local x = byte(s, p + 1)
      if not x then return nil, "unterminated string" end
      if x == 117 then -- \u
        local cp = hex4(s, p + 2)
        if not cp then return nil, "invalid \\u escape" end
        i = p + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          if sub(s, i, i + 1) ~= "\\u" then return nil, "invalid literal" end
          local low = hex4(s, i + 2)
          if not low then return nil, "invalid \\u escape" end
          if low < 0xDC00 or low > 0xDFFF then return nil, "lone surrogate" end
          cp = 0x10000 + (cp - 0xD800) * 1024 + (low - 0xDC00)
          i = i + 6
        elseif cp >= 0xDC00 and cp <= 0xDFFF then
          return nil, "lone surrogate"
        end
        n = n + 1
        out[n] = utf8_encode(cp)
      elseif ESCAPES[x] then
        n = n + 1
        out[n] = ESCAPES[x]
        i = p + 2
      else
        return nil, "invalid escape"
      end
    else
      return nil, "control character in string"
    end
  end
end

local function parse_number(s, i)
  local start = i
  if byte(s, i) == 45 then i = i + 1 end
  if byte(s, i) == 48 then
    i = i + 1
  else
    local _, e = find(s, "^%d+", i)
    if not e then return nil, "invalid number" end
    i = e + 1
  end
  if byte(s, i) == 46 then
    local _, e = find(s, "^%d+", i + 1)
    if not e then return nil, "invalid number" end
    i = e + 1
  end
  local c = byte(s, i)
  if c == 101 or c == 69 then
    i = i + 1
    c = byte(s, i)
    if c == 43 or c == 45 then i = i + 1 end
    local _, e = find(s, "^%d+", i)
    if not e then return nil, "invalid number" end
    i = e + 1
  end
  if i - start > 64 then return nil, "number too long" end
  return setmetatable({ sub(s, start, i - 1) }, NUMBER), i
end

local function parse_value(s, i, depth, max)
  if depth > max then return nil, "nested too deeply" end
  i = skip(s, i)
  local c = byte(s, i)
  if not c then return nil, "unexpected end" end
  if c == 123 then -- {
    local object = setmetatable({}, OBJECT)
    i = skip(s, i + 1)
    if byte(s, i) == 125 then return object, i + 1 end
    while true do
      i = skip(s, i)
      if byte(s, i) ~= 34 then return nil, "expected a member name" end
      local name, value
      name, i = parse_string(s, i)
      if not name then return nil, i end
      i = skip(s, i)
      if byte(s, i) ~= 58 then return nil, "invalid literal" end
      value, i = parse_value(s, i + 1, depth + 1, max)
      if value == nil then return nil, i end
      if object[name] ~= nil then return nil, "duplicate member name" end
      object[name] = value
      i = skip(s, i)
      c = byte(s, i)
      if c == 44 then
        i = i + 1
      elseif c == 125 then
        return object, i + 1
      else
        return nil, "invalid literal"
      end
    end
  elseif c == 91 then -- [
    local array, n = setmetatable({}, ARRAY), 0
    i = skip(s, i + 1)
    if byte(s, i) == 93 then return array, i + 1 end
    while true do
      local value
      value, i = parse_value(s, i, depth + 1, max)
      if value == nil then return nil, i end
      n = n + 1
      array[n] = value
      i = skip(s, i)
      c = byte(s, i)
      if c == 44 then
        i = i + 1
      elseif c == 93 then
        return array, i + 1
      else
        return nil, "invalid literal"
      end
    end
  elseif c == 34 then
    return parse_string(s, i)
  elseif c == 116 then
    if sub(s, i, i + 3) == "true" then return true, i + 4 end
    return nil, "invalid literal"
  elseif c == 102 then
    if sub(s, i, i + 4) == "false" then return false, i + 5 end
    return nil, "invalid literal"
  elseif c == 110 then
    if sub(s, i, i + 3) == "null" then return NULL, i + 4 end
    return nil, "invalid literal"
  end
  return parse_number(s, i)
end

-- StrictJSON.parseObject: the top level must be an object, nothing may follow it.
local function parse_object(s, max)
  local i = skip(s, 1)
  if byte(s, i) ~= 123 then return nil, "not a JSON object" end
  local value, after = parse_value(s, i, 0, max)
  if value == nil then return nil, after end
  if skip(s, after) ~= #s + 1 then return nil, "trailing bytes after JSON" end
  return value
end
_M.parse_object = parse_object

local function string_of(v)
  return type(v) == "string" and v or nil
end

-- JSONValue.integer: an integer without fraction or exponent that fits in 64 bits, as a Lua
-- number. (Lua numbers are doubles: above 2^53 they round, but every claim rule below then refuses
-- the token either way, as TokenGate's exact Int64 arithmetic does; see README.md.)
local function integer_of(v)
  if getmetatable(v) ~= NUMBER then return nil end
  local text = v[1]
  local negative = byte(text, 1) == 45
  local digits = negative and sub(text, 2) or text
  if find(digits, "[^0-9]") then return nil end
  if #digits > 19 or (#digits == 19 and digits > (negative and "9223372036854775808" or "9223372036854775807")) then
    return nil
  end
  return tonumber(text)
end

local function is_username(s)
  return s ~= nil and #s >= 1 and #s <= 64 and not find(s, "[^a-z0-9%._@%-]")
end

local function is_identifier(s)
  return s ~= nil and #s >= 22 and #s <= 64 and not find(s, "[^A-Za-z0-9_%-]")
end

-- A header TokenGate did not write itself (TokenVerifier.parseHeader).
local ALGORITHMS = { HS256 = true, EdDSA = true, ES256 = true }
local function parse_header(segment)
  local bytes = b64_strict(segment)
  if not bytes then return nil, "header is not base64url" end
  local header = parse_object(bytes, 2)
  if not header then return nil, "header is not a JSON object" end
  for name in pairs(header) do
    if name ~= "alg" and name ~= "typ" and name ~= "kid" then
      return nil, "the header has a member other than alg, typ and kid"
    end
  end
  local alg = string_of(header.alg)
  if not alg or not ALGORITHMS[alg] then return nil, "algorithm not accepted" end
  if header.typ ~= "JWT" then return nil, "typ must be JWT" end
  local key
  if header.kid ~= nil then
    local name = string_of(header.kid)
    key = name and keys[name]
    if not key then return nil, "unknown key id" end
  else
    if key_count ~= 1 then return nil, "a key id is required" end
    key = next(keys) and keys[next(keys)]
  end
  if alg ~= "HS256" then return nil, "algorithm does not match the key" end
  return key
end

local MAX_TOKEN_BYTES = 4096

-- Verifies `token` at Unix time `now`: returns the claims table ({user, sid, jti, iat, exp}) or
-- nil, the contract's code ("invalid_token" or "token_expired") and the reason.
function _M.verify(token, now)
  if #token > MAX_TOKEN_BYTES then return nil, "invalid_token", "too large" end
  local first = find(token, ".", 1, true)
  if not first then return nil, "invalid_token", "not a JWS compact token" end
  local second = find(token, ".", first + 1, true)
  if not second or find(token, ".", second + 1, true) then return nil, "invalid_token", "not a JWS compact token" end

  local header_segment = sub(token, 1, first - 1)
  local key = known_headers[header_segment]
  if not key then
    local reason
    key, reason = parse_header(header_segment)
    if not key then return nil, "invalid_token", reason end
  end

  -- The signature, over the raw "header.payload" bytes, before the payload is read. Strict
  -- base64url is one spelling per byte string, so "the text decodes strictly to the 32-byte MAC"
  -- is "the text is the MAC's (unpadded) base64url": compared so, in constant time.
  local ctx = key.ctx
  crypto.HMAC_Init_ex(ctx, nil, 0, nil, nil)
  crypto.HMAC_Update(ctx, token, second - 1)
  crypto.HMAC_Final(ctx, mac_out, mac_len)
  local expected = encode_base64url(ffi.string(mac_out, 32))
  local signature = sub(token, second + 1)
  if #signature ~= #expected or crypto.CRYPTO_memcmp(signature, expected, #expected) ~= 0 then
    -- Refused; the reason as TokenGate gives it (a text that is not strict base64url of 32 bytes
    -- is malformed).
    local decoded = b64_strict(signature)
    if not decoded or #decoded ~= 32 then return nil, "invalid_token", "signature is malformed" end
    return nil, "invalid_token", "signature does not verify"
  end

  local payload = b64_strict(sub(token, first + 1, second - 1))
  if not payload then return nil, "invalid_token", "payload is not base64url" end
  local claims = parse_object(payload, 4)
  if not claims then return nil, "invalid_token", "payload is not a JSON object" end
  if string_of(claims.iss) ~= issuer then return nil, "invalid_token", "wrong issuer" end
  local aud = claims.aud
  if audience == nil then
    if aud ~= nil then return nil, "invalid_token", "wrong audience" end
  elseif aud ~= audience then
    local found = false
    if getmetatable(aud) == ARRAY then
      for _, v in ipairs(aud) do
        if v == audience then found = true break end
      end
    end
    if not found then return nil, "invalid_token", "wrong audience" end
  end
  local user = string_of(claims.sub)
  if not is_username(user) then return nil, "invalid_token", "bad sub" end
  local sid = string_of(claims.sid)
  if not is_identifier(sid) then return nil, "invalid_token", "bad sid" end
  local jti = string_of(claims.jti)
  if not is_identifier(jti) then return nil, "invalid_token", "bad jti" end
  local iat, exp = integer_of(claims.iat), integer_of(claims.exp)
  if not iat or not exp then return nil, "invalid_token", "iat and exp must be integers" end
  if not (exp > iat) or exp - iat > token_ttl then return nil, "invalid_token", "lifetime is longer than allowed" end
  if iat > now + leeway then return nil, "invalid_token", "issued in the future" end
  if claims.nbf ~= nil then
    local nbf = integer_of(claims.nbf)
    if not nbf or nbf > now + leeway then return nil, "invalid_token", "not yet valid" end
  end
  if not (exp + leeway > now) then return nil, "token_expired", "the token has expired" end
  return { user = user, sid = sid, jti = jti, iat = iat, exp = exp }
end

return _M
