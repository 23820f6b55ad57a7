-- GET the URL on wrk's command line with If-None-Match set to the script's argument (a
-- calendar feed's ETag), counting every status: a poll answered 304.
--   wrk -t2 -c16 -d10s --latency -s benchmarks/lua/conditional_get.lua URL -- '"etag"'

package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local bench = require("bench")

setup = bench.setup
done = bench.done

function init(args)
  wrk.headers["If-None-Match"] = args[1]
end

function response(status, headers, body)
  bench.count("status_" .. status)
end
