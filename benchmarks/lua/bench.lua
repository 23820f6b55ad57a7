-- Shared by the wrk scripts in this folder (loaded with require "bench").
--
-- Each wrk thread runs its own Lua state. A thread counts what it sees in the global table
-- `counters`; done() (in wrk's main state, after the threads have ended) adds the threads'
-- counters up and prints one line, "WRK_JSON {...}", that benchmarks/wrk.py reads.
-- Counter names starting with "min_" or "max_" are combined by min or max, others summed.
-- A script that times its own requests keeps them in the global list `latencies`
-- (microseconds); done() then also reports their percentiles ("own_latency_us").

local ffi = require("ffi")

ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])

local CLOCK_MONOTONIC = 1 -- the clock Python's time.monotonic() reads on Linux
local timespec = ffi.new("bench_timespec")

local bench = {}
local threads = {} -- main state only: the threads given to setup()

counters = {}

--- Microseconds on the monotonic clock (wrk 4.1 gives Lua no clock of its own).
function bench.now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000000 + math.floor(tonumber(timespec.tv_nsec) / 1000)
end

function bench.count(name, n)
  counters[name] = (counters[name] or 0) + (n or 1)
end

function bench.keep_min(name, value)
  if counters[name] == nil or value < counters[name] then counters[name] = value end
end

function bench.keep_max(name, value)
  if counters[name] == nil or value > counters[name] then counters[name] = value end
end

--- wrk's setup(thread), in the main state: number the threads 0, 1, ...
function bench.setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

--- The lines of `path` that belong to this thread: line n (from 0) goes to thread n % count.
function bench.my_lines(path, thread_count)
  local mine, n = {}, 0
  for line in io.lines(path) do
    if n % thread_count == thread_index then mine[#mine + 1] = line end
    n = n + 1
  end
  return mine
end

--- Tell benchmarks/wrk.py that this thread has finished its share: once every thread
--- has, it ends wrk (a thread that stopped itself would leave its connection open).
function bench.thread_finished()
  io.write("WRK_THREAD_DONE ", thread_index, "\n")
  io.flush()
end

local function combine(total, name, value)
  if name:sub(1, 4) == "min_" then
    if total[name] == nil or value < total[name] then total[name] = value end
  elseif name:sub(1, 4) == "max_" then
    if total[name] == nil or value > total[name] then total[name] = value end
  else
    total[name] = (total[name] or 0) + value
  end
end

--- wrk's done(summary, latency, requests), in the main state.
function bench.done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for name, value in pairs(thread:get("counters") or {}) do combine(total, name, value) end
  end
  local parts = {}
  for name, value in pairs(total) do
    parts[#parts + 1] = string.format('"%s":%.0f', name, value)
  end
  local own = {}
  for _, thread in ipairs(threads) do
    for _, value in ipairs(thread:get("latencies") or {}) do own[#own + 1] = value end
  end
  table.sort(own)
  local function rank(p) -- nearest-rank percentile
    return own[math.max(1, math.ceil(p / 100 * #own))]
  end
  local own_json = ""
  if #own > 0 then
    own_json = string.format(
      ',"own_latency_us":{"p50":%.0f,"p90":%.0f,"p99":%.0f,"max":%.0f,"count":%d}',
      rank(50), rank(90), rank(99), own[#own], #own)
  end
  local e = summary.errors
  local has = summary.requests > 0
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},' ..
    '"latency_us":{"p50":%.0f,"p90":%.0f,"p99":%.0f,"max":%.0f,"mean":%.1f},' ..
    '"counters":{%s}%s}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    has and latency:percentile(50) or 0, has and latency:percentile(90) or 0,
    has and latency:percentile(99) or 0, has and latency.max or 0, has and latency.mean or 0,
    table.concat(parts, ","), own_json))
  io.flush()
end

return bench
