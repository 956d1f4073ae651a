-- GET /api/me with tokens whose signature is wrong: must be refused (401) without touching Redis.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local i = 0
local bad = {}

function init(args)
  load_tokens()
  for n, token in ipairs(tokens) do
    -- Flip the first signature character: same shape, wrong MAC.
    local dot = token:find("%.[^%.]*$")
    local c = token:sub(dot + 1, dot + 1)
    bad[n] = token:sub(1, dot) .. (c == "A" and "B" or "A") .. token:sub(dot + 2)
  end
  i = math.random(#bad)
end

function request()
  i = i % #bad + 1
  return wrk.format("GET", "/api/me", { ["Authorization"] = "Bearer " .. bad[i] })
end

-- Here a 401 is the right answer; count anything else as an error.
local wrong = 0
function response(status, headers, body)
  if status ~= 401 then wrong = wrong + 1 end
end
