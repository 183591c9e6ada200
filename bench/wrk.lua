-- wrk script for bench/run.sh.
--
--   wrk ... -s bench/wrk.lua http://HOST/prefix/ -- put [SIZE]   PUT SIZE-byte bodies (default 100 KiB)
--                                                                 to prefix .. "t<thread>-<n>.bin"
--   wrk ... -s bench/wrk.lua http://HOST/file.bin -- get          GET the one URL
--
-- Every response's status code is counted in each thread; done() adds them up and prints
-- machine-readable lines (STATUS, ERRORS, RESULT) that run.sh parses.  wrk itself only reports
-- statuses >= 400 (its "Non-2xx or 3xx" line), so a 3xx or a stray 1xx would go unseen without this.
--
-- The per-thread id arrives as the global `thread_id` (thread:set).  Never declare a top-level
-- `local thread_id`: it would shadow that global, every thread would PUT the same paths and
-- concurrent PUTs to one path skew the result (see /work/shared/tooling.md).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

function init(args)
  mode = args[1] or "get"
  counter = 0
  statuses = {}
  if mode == "put" then
    put_body = string.rep("x", tonumber(args[2] or "102400"))
    put_base = wrk.path
    put_headers = { ["Content-Type"] = "application/octet-stream" }
  elseif mode == "get" then
    get_request = wrk.format("GET", wrk.path)
  else
    error("wrk.lua: mode must be put or get, got " .. tostring(mode))
  end
end

function request()
  if mode == "put" then
    -- wrk calls request() once per thread before the load starts and discards that request,
    -- so t<id>-1.bin is never sent; the numbering starts at 2.  Harmless: paths stay unique.
    counter = counter + 1
    return wrk.format("PUT", put_base .. "t" .. thread_id .. "-" .. counter .. ".bin", put_headers, put_body)
  end
  return get_request
end

function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency)
  local total, codes = {}, {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do
      if total[code] == nil then table.insert(codes, code) end
      total[code] = (total[code] or 0) + n
    end
  end
  table.sort(codes)
  local non2xx = 0
  for _, code in ipairs(codes) do
    io.write(string.format("STATUS %d %d\n", code, total[code]))
    if code < 200 or code > 299 then non2xx = non2xx + total[code] end
  end
  local e = summary.errors
  io.write(string.format("ERRORS connect=%d read=%d write=%d status=%d timeout=%d\n",
    e.connect, e.read, e.write, e.status, e.timeout))
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rps=%.1f non2xx=%d sockerr=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    summary.requests, secs, summary.requests / secs, non2xx, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
