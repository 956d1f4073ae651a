-- GET $BENCH_PATH (default /api/me) with valid tokens of many users, round-robin.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local path = os.getenv("BENCH_PATH") or "/api/me"
local i = 0

function init(args)
  load_tokens()
  i = math.random(#tokens)
end

function request()
  i = i % #tokens + 1
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. tokens[i] })
end
