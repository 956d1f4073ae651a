-- Refresh chains: every request refreshes the newest token of a chain no other request is using,
-- so each session holds about two live tokens (a session keeps at most 64: with all of a thread's
-- connections refreshing one token at once, the oldest would be retired while still in flight).
-- A thread starts with 64 chains (tokens of different sessions): more than its connections, so a
-- chain is always free.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local free = {}
local threads = 0 -- in the setup environment: the threads numbered so far

function setup(thread)
  thread:set("first", threads)
  threads = threads + 1
end

function init(args)
  load_tokens()
  -- Threads take disjoint slices of the token file.
  local start = (first or 0) * 64
  for k = 1, 64 do free[#free + 1] = tokens[(start + k - 1) % #tokens + 1] end
end

function request()
  local token = table.remove(free, 1) or tokens[math.random(#tokens)]
  return wrk.format("POST", "/auth/refresh", { ["Authorization"] = "Bearer " .. token })
end

function response(status, headers, body)
  if status == 200 then
    local next = body:match('"access_token":"([^"]+)"')
    if next then free[#free + 1] = next end
  end
end
