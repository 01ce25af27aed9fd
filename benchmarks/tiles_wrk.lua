-- wrk script for benchmarks/tiles.py: walk a list of tile paths, report JSON.
--
--   wrk -t1 -c8 -d600s -s tiles_wrk.lua http://127.0.0.1:PORT -- PATHS once
--   wrk -t1 -c8 -d10s  -s tiles_wrk.lua http://127.0.0.1:PORT -- PATHS loop
--
-- PATHS holds one request path per line. "once" requests each path exactly
-- once, in order (a cold run: every tile is new to the server); when as many
-- answers are in, the thread stops and prints "list done" on stderr, and the
-- caller sends wrk SIGINT, which makes it report at once instead of sleeping
-- out the duration. "loop" walks the list again and again until the duration
-- is over (a warm run). Run it with one thread (-t1): every thread has its own
-- copy of the list and would request it again.
--
-- done() prints one line of JSON: answers, seconds (first request to last
-- answer, on CLOCK_MONOTONIC), answers per second, latency percentiles in
-- milliseconds, bytes read (headers included), errors, and the answers by
-- status.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } gridgeo_timespec;
int clock_gettime(int clock, gridgeo_timespec *tp);
]]
local timespec = ffi.new("gridgeo_timespec")

local function now()
   ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
   return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local threads = {}
local paths = {}
local mode = "loop"
local next_path = 0

-- globals of each thread, read back by done() with thread:get
answered = 0
counts = {}
started = nil
finished = nil

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   for line in io.lines(args[1]) do
      if #line > 0 then
         paths[#paths + 1] = line
      end
   end
   mode = args[2] or mode
end

function request()
   started = started or now()
   next_path = next_path + 1
   if next_path > #paths then
      if mode == "once" then
         -- connections still open after the end of the list ask for the first
         -- tile again: at most (connections - 1) repeats, answered before the stop
         return wrk.format("GET", paths[1])
      end
      next_path = 1
   end
   return wrk.format("GET", paths[next_path])
end

function response(status, headers, body)
   answered = answered + 1
   counts[status] = (counts[status] or 0) + 1
   finished = now()
   if mode == "once" and answered == #paths then
      io.stderr:write("list done\n")
      io.stderr:flush()
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local errors = summary.errors
   local failed = errors.connect + errors.read + errors.write + errors.timeout + errors.status
   local merged = {}
   local first, last, answers = math.huge, 0, 0
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("counts")) do
         merged[status] = (merged[status] or 0) + n
      end
      first = math.min(first, thread:get("started") or math.huge)
      last = math.max(last, thread:get("finished") or 0)
      answers = answers + thread:get("answered")
   end
   local seconds = last - first
   local parts = {}
   for status, n in pairs(merged) do
      parts[#parts + 1] = string.format('"%d": %d', status, n)
   end
   io.write(string.format(
      '{"answers": %d, "seconds": %.4f, "per_second": %.2f, "p50_ms": %.3f, "p95_ms": %.3f, ' ..
      '"p99_ms": %.3f, "mean_ms": %.3f, "max_ms": %.3f, "bytes": %d, "errors": %d, "statuses": {%s}}\n',
      answers, seconds, answers / seconds,
      latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
      latency.mean / 1000, latency.max / 1000, summary.bytes, failed, table.concat(parts, ", ")))
end
