-- Registrations for POST /activities/ID/register, driven by wrk
-- (benchmarks/registration_rush.py runs it).
--
--   wrk -t50 -c50 -d120s -s benchmarks/lua/register.lua http://127.0.0.1:PORT \
--       -- ATTEMPTS_FILE THREADS ACTIVITY_ID
--
-- Run it with as many wrk threads as connections: each thread then has one connection,
-- so every answer belongs to the one request outstanding on it, and this script measures
-- each registration's own latency (request written to answer read).
--
-- ATTEMPTS_FILE holds one attempt a line: session cookie, CSRF token, name (URL-encoded)
-- and phone, tab-separated, each from a real GET of the form before the timed part.
-- Thread t sends lines t, t+THREADS, ..., each exactly once.
--
-- wrk runs for a duration, not a number of requests. When a thread has had all its lines
-- answered it says so on stdout (benchmarks/wrk.py ends wrk once every thread has) and,
-- until then, sends GET /healthz ("fillers"), which are left out of every registration
-- figure. Fillers rather than an idle connection: a gunicorn sync worker that accepts the
-- connection wrk opens after each answer would wait on it for the next request and serve
-- nobody else meanwhile.

package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local bench = require("bench")

local attempts = {}
local path
local next_line = 1
local outstanding, started -- what the one request in flight is, and when it was written
local finished = false
-- wrk calls request() once in thread 0 before starting, only to check the request's
-- syntax, and never sends it: that call must not use up an attempt.
local syntax_check_pending

latencies = {} -- microseconds, one per answered registration; read by bench.done()

setup = bench.setup
done = bench.done

function init(args)
  attempts = bench.my_lines(args[1], tonumber(args[2]))
  path = "/activities/" .. args[3] .. "/register"
  syntax_check_pending = thread_index == 0
  bench.count("attempts_given", #attempts)
end

local function registration(line)
  local cookie, token, name, phone = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$")
  return wrk.format("POST", path, {
    ["Cookie"] = cookie,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, "csrf_token=" .. token .. "&name=" .. name .. "&phone=" .. phone)
end

local function finish()
  if finished then return end
  finished = true
  bench.thread_finished()
end

function request()
  if syntax_check_pending then
    syntax_check_pending = false
    return registration(attempts[1])
  end
  if outstanding == "registration" then
    -- wrk sends again only after a socket error: that registration's answer is lost.
    bench.count("registrations_lost")
  end
  if next_line <= #attempts then
    local line = attempts[next_line]
    next_line = next_line + 1
    outstanding, started = "registration", bench.now_us()
    bench.keep_min("min_first_request_us", started)
    bench.count("attempts_sent")
    return registration(line)
  end
  finish()
  outstanding = "filler"
  bench.count("fillers_sent")
  return wrk.format("GET", "/healthz")
end

function response(status, headers, body)
  if outstanding == "registration" then
    local now = bench.now_us()
    latencies[#latencies + 1] = now - started
    bench.count("status_" .. status)
    bench.keep_max("max_last_answer_us", now)
    outstanding = nil
    if next_line > #attempts then finish() end
  else
    outstanding = nil
    bench.count("filler_status_" .. status)
  end
end
