-- Shared by the wrk scripts: tokens from $TOKENS_FILE, and one machine-readable result line.
tokens = {}

function load_tokens()
  local file = os.getenv("TOKENS_FILE")
  if file then
    for line in io.lines(file) do
      if #line > 0 then tokens[#tokens + 1] = line end
    end
  end
end

-- `RESULT requests seconds p50_us p99_us errors`: errors are non-2xx answers plus socket errors.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.3f %d %d %d\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99), e.status + e.connect + e.read + e.write + e.timeout))
end
