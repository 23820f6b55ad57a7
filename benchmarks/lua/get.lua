-- GET the URL on wrk's command line, counting every status: the ceilings /healthz and
-- /healthz/db. The same per-response work as the other scripts, so ceilings compare fairly.
--   wrk -t2 -c50 -d15s --latency -s benchmarks/lua/get.lua http://127.0.0.1:PORT/healthz

package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local bench = require("bench")

setup = bench.setup
done = bench.done

function response(status, headers, body)
  bench.count("status_" .. status)
end
