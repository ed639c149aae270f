-- Shared by every bench script: counts answers outside 2xx, stops a thread after a request
-- quota (for the soak), and prints one JSON line from done() for bench/run.py to parse.
--
-- Inputs come from the environment (set by bench/run.py):
--   BENCH_MAX_REQUESTS  per-thread quota of answered requests; 0 or unset runs for -d.
--                       wrk's main thread still sleeps for -d, so a thread that meets its
--                       quota creates BENCH_DONE_DIR/<tid> and bench/run.py sends wrk SIGINT
--                       once every thread has.
--   BENCH_IDS_FILE      user ids, one per line (scripts that rotate ids)
--   BENCH_KEY           a secret API key; BENCH_TOKEN a user token; BENCH_TAG a run tag

local threads = {}
local next_tid = 0

-- Runs in the main Lua state once per thread, before the threads start.
function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  table.insert(threads, thread)
end

-- Per-thread state (every thread has its own Lua state and its own copy of these globals).
answered = 0
non2xx = 0
statuses = ""
local status_counts = {}
local quota = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0") or 0

function bench_env(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error("bench: environment variable " .. name .. " is not set")
  end
  return value
end

function bench_read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if line ~= "" then
      table.insert(lines, line)
    end
  end
  if #lines == 0 then
    error("bench: no lines in " .. path)
  end
  return lines
end

function response(status, headers, body)
  answered = answered + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    local key = tostring(status)
    status_counts[key] = (status_counts[key] or 0) + 1
    local parts = {}
    for code, count in pairs(status_counts) do
      table.insert(parts, '"' .. code .. '":' .. count)
    end
    statuses = table.concat(parts, ",")
  end
  if quota > 0 and answered == quota then
    local marker = io.open(bench_env("BENCH_DONE_DIR") .. "/" .. tostring(tid), "w")
    if marker then
      marker:close()
    end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total_non2xx = 0
  local parts = {}
  for _, thread in ipairs(threads) do
    total_non2xx = total_non2xx + (thread:get("non2xx") or 0)
    local s = thread:get("statuses") or ""
    if s ~= "" then
      table.insert(parts, "{" .. s .. "}")
    end
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  local out = string.format(
    '{"requests":%d,"duration_s":%.6f,"rps":%.3f,"bytes":%d,'
      .. '"errors":%d,"errors_detail":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},'
      .. '"non2xx":%d,"non2xx_by_thread":[%s],'
      .. '"latency_ms":{"mean":%.3f,"stdev":%.3f,"max":%.3f,'
      .. '"p50":%.3f,"p75":%.3f,"p90":%.3f,"p99":%.3f,"p999":%.3f}}',
    summary.requests, seconds, summary.requests / seconds, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.write, e.timeout, e.status,
    total_non2xx, table.concat(parts, ","),
    latency.mean / 1000, latency.stdev / 1000, latency.max / 1000,
    latency:percentile(50) / 1000, latency:percentile(75) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000
  )
  io.write("BENCH_JSON " .. out .. "\n")
end
