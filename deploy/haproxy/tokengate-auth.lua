-- TokenGate forward-auth for HAProxy (2.5 or newer: core.httpclient), the auth-request pattern of
-- haproxy-auth-request (`http-request lua.auth-request`) without its haproxy-lua-http dependency.
--
--   global
--       lua-load /etc/haproxy/tokengate-auth.lua
--   frontend ...
--       http-request lua.tokengate-auth http://127.0.0.1:8080/auth/verify if !tokengate_api !public
--
-- It sends the request's credentials (Authorization, Cookie, X-CSRF-Token, Sec-Fetch-Site, Origin,
-- Host) and its method and URI (X-Forwarded-Method, X-Forwarded-Uri) to /auth/verify, and sets:
--   txn.tg_status   200 when the token is good; TokenGate's 401 or 403 as they are; 503 for
--                   anything else (TokenGate's 503 when Redis is down, or no answer at all)
--   txn.tg_user, txn.tg_session   X-Auth-User, X-Auth-Session of a 200
--   txn.tg_next     X-Next-Token of a 200 (per-request rotation), for the client's answer
--   txn.tg_body, txn.tg_www       a refusal's JSON body and WWW-Authenticate, for the client
-- docs/forward-auth.md ("HAProxy") has the frontend lines that act on them.

local forwarded = { "authorization", "cookie", "x-csrf-token", "sec-fetch-site", "origin", "host" }
local unavailable = '{"error":"store_unavailable","message":"the session store is unavailable; try again"}'

local function first(headers, name)
    local values = headers[name]
    if values == nil then return nil end
    return values[0]
end

core.register_action("tokengate-auth", { "http-req" }, function(txn, url)
    local incoming = txn.http:req_get_headers()
    local headers = {
        ["x-forwarded-method"] = { txn.sf:method() },
        ["x-forwarded-uri"] = { txn.sf:pathq() },
    }
    for _, name in ipairs(forwarded) do
        local values = incoming[name]
        if values ~= nil then
            local list = {}
            for i = 0, #values do
                if values[i] ~= nil then list[#list + 1] = values[i] end
            end
            headers[name] = list
        end
    end
    local ok, response = pcall(function()
        return core.httpclient():get({ url = url, headers = headers, timeout = 10000 })
    end)
    local status = ok and response and tonumber(response.status) or 0
    local answer = ok and response and response.headers or {}
    if status >= 200 and status < 300 then
        txn:set_var("txn.tg_status", 200)
        txn:set_var("txn.tg_user", first(answer, "x-auth-user") or "")
        txn:set_var("txn.tg_session", first(answer, "x-auth-session") or "")
        local successor = first(answer, "x-next-token")
        if successor ~= nil then txn:set_var("txn.tg_next", successor) end
    elseif status == 401 or status == 403 then
        txn:set_var("txn.tg_status", status)
        txn:set_var("txn.tg_body", response.body or "")
        txn:set_var("txn.tg_www", first(answer, "www-authenticate") or "")
    else
        txn:set_var("txn.tg_status", 503)
        txn:set_var("txn.tg_body", (status == 503 and response.body) or unavailable)
    end
end, 1)
