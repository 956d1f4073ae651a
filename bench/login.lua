-- Logins only (for the memory workloads); each thread stops after $BENCH_QUOTA successful logins.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local users = tonumber(os.getenv("BENCH_USERS") or "100")
local quota = tonumber(os.getenv("BENCH_QUOTA") or "1000000")
local ok = 0
local n = 0

function request()
  n = n + 1
  local user = "user" .. ((n * 7919) % users + 1)
  return wrk.format("POST", "/auth/login", { ["Content-Type"] = "application/json" },
    '{"username":"' .. user .. '","password":"bench-password"}')
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 end
  if ok >= quota then wrk.thread:stop() end
end
