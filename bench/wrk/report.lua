-- Shared by every wrk run of the benchmark (loaded by the other scripts via dofile). Prints one
-- machine-readable line at the end:
--   BENCH_JSON {"requests":..,"duration_us":..,"p50_us":..,...,"bad":..}
-- BENCH_MAX_REQUESTS: stop after that many responses (the RSS phase needs request counts; wrk
--   itself only knows durations). Per thread; the benchmark runs wrk with one thread. wrk's main
--   thread still sleeps for -d, so this prints BENCH_STOP and bench.py answers with SIGINT, which
--   wrk treats as the end of the run.
-- BENCH_BAD_MARKERS: '|'-separated strings; a response whose body contains one counts as bad (an
--   MCP tools/call answers HTTP 200 even when the call failed).

local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "")
local markers = {}
for m in string.gmatch(os.getenv("BENCH_BAD_MARKERS") or "", "[^|]+") do markers[#markers + 1] = m end
seen_count, bad_count = 0, 0  -- globals: done() reads them from each thread with thread:get
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

if max_requests or #markers > 0 then
  function response(status, headers, body)
    seen_count = seen_count + 1
    for _, m in ipairs(markers) do
      if body and string.find(body, m, 1, true) then
        bad_count = bad_count + 1
        break
      end
    end
    if max_requests and seen_count == max_requests then
      wrk.thread:stop()
      io.write("BENCH_STOP\n")
      io.stdout:flush()
    end
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("bad_count") or 0) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"bad":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean, bad,
    e.connect, e.read, e.write, e.status, e.timeout))
end
