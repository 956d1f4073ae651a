-- Login then logout, in a loop per connection (bcrypt cost of the bench users: 4).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local users = tonumber(os.getenv("BENCH_USERS") or "100")
local token = nil

function request()
  if token then
    local t = token
    token = nil
    return wrk.format("POST", "/auth/logout", { ["Authorization"] = "Bearer " .. t })
  end
  local user = "user" .. math.random(users)
  return wrk.format("POST", "/auth/login", { ["Content-Type"] = "application/json" },
    '{"username":"' .. user .. '","password":"bench-password"}')
end

function response(status, headers, body)
  if status == 200 then token = body:match('"access_token":"([^"]+)"') end
end
