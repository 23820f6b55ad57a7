-- Scans for POST /api/v1/checkins, driven by wrk (benchmarks/checkin.py runs it).
--
--   wrk -t2 -c50 -d15s --latency -s benchmarks/lua/checkin.lua http://127.0.0.1:PORT \
--       -- TICKETS_FILE THREADS ACTIVITY_ID TOKEN NONCE_PREFIX REPEAT_SHARE PACE_MS
--
-- TICKETS_FILE holds one ticket secret a line, none used before; thread t takes lines
-- t, t+THREADS, ... so no two threads ever scan the same ticket, and within a thread each
-- new scan takes the next unused line. A share REPEAT_SHARE of scans repeats a ticket this
-- thread has already sent (the door scanning someone twice). Every scan has its own nonce
-- (NONCE_PREFIX-thread-n), so benchmarks/checkin.py can find this run's scans in the scan
-- log. PACE_MS > 0: each connection waits 0.5-1.5 x PACE_MS between its scans (a door's
-- pace) instead of sending the next one as soon as the answer arrives.

package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local bench = require("bench")

local tickets, sent = {}, {}
local next_ticket, sequence = 1, 0
local headers, activity_id, nonce_prefix, repeat_share
local seen = {} -- short codes answered, to count distinct tickets
-- wrk calls request() once in thread 0 before starting, only to check the request's
-- syntax, and never sends it: that call must not use up a ticket.
local syntax_check_pending

setup = bench.setup
done = bench.done

function init(args)
  tickets = bench.my_lines(args[1], tonumber(args[2]))
  activity_id = tonumber(args[3])
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args[4] }
  nonce_prefix = args[5]
  repeat_share = tonumber(args[6])
  local pace_ms = tonumber(args[7])
  math.randomseed(bench.now_us() + 7919 * thread_index)
  syntax_check_pending = thread_index == 0
  bench.count("tickets_given", #tickets)
  if pace_ms > 0 then
    function delay()
      return math.floor(pace_ms * (0.5 + math.random()))
    end
  end
end

local function scan_body(code)
  sequence = sequence + 1
  return string.format('{"code":"%s","activity_id":%d,"nonce":"%s-%d-%d"}',
    code, activity_id, nonce_prefix, thread_index, sequence)
end

function request()
  if syntax_check_pending then
    syntax_check_pending = false
    return wrk.format("POST", "/api/v1/checkins", headers, scan_body("syntax-check"))
  end
  local code
  if #sent > 0 and math.random() < repeat_share then
    code = sent[math.random(#sent)]
    bench.count("repeats_sent")
  elseif next_ticket <= #tickets then
    code = tickets[next_ticket]
    next_ticket = next_ticket + 1
    sent[#sent + 1] = code
    bench.count("new_sent")
  else
    -- Out of unused tickets: the run is no longer the mix it claims. Counted, and
    -- benchmarks/checkin.py fails loudly.
    bench.count("tickets_exhausted")
    code = sent[math.random(#sent)]
  end
  return wrk.format("POST", "/api/v1/checkins", headers, scan_body(code))
end

function response(status, headers, body)
  bench.count("status_" .. status)
  if status ~= 200 then return end
  bench.count("result_" .. (body:match('"result":%s*"([%a_]+)"') or "unreadable"))
  local short_code = body:match('"short_code":%s*"([^"]+)"')
  if short_code and not seen[short_code] then
    seen[short_code] = true
    bench.count("distinct_tickets_answered")
  end
end
