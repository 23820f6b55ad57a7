-- GET the URL on wrk's command line, counting every status: the ceilings /healthz and
-- /healthz/db. The same per-response work as the other scripts, so ceilings compare fairly.
--   wrk -t2 -c50 -d15s --latency -s benchmarks/lua/get.lua http://127.0.0.1:PORT/healthz [-- PACE_MS]
-- PACE_MS > 0: each connection waits 0.5-1.5 x PACE_MS between its requests, as the paced
-- scans do (benchmarks/lua/checkin.lua), so a paced scan's latency has a paced ceiling.

package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local bench = require("bench")

setup = bench.setup
done = bench.done

function init(args)
  local pace_ms = tonumber(args[1] or "0")
  if pace_ms > 0 then
    math.randomseed(bench.now_us() + 7919 * thread_index)
    function delay()
      return math.floor(pace_ms * (0.5 + math.random()))
    end
  end
end

function response(status, headers, body)
  bench.count("status_" .. status)
end
