-- Refresh chains: each connection starts from its own token and always refreshes with the newest.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local token

function init(args)
  load_tokens()
  token = tokens[math.random(#tokens)]
end

function request()
  return wrk.format("POST", "/auth/refresh", { ["Authorization"] = "Bearer " .. token })
end

function response(status, headers, body)
  if status == 200 then
    local next = body:match('"access_token":"([^"]+)"')
    if next then token = next end
  end
end
