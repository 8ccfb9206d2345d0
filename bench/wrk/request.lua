-- One wrk script for every HTTP case of the suite (bench/suite.py).
--
-- Environment:
--   BENCH_METHOD   GET (default) or POST
--   BENCH_TARGETS  a file of request lines: "<path>\t<token or ->\t<body or ->";
--                  each thread walks them in turn, starting at its own offset
--   BENCH_UNIQUE   when set, "{n}" in a body becomes a number unique to this
--                  request (thread id and counter), for bodies that must differ
-- At the end it prints one line, "BENCH {json}", that the suite parses.

local method = os.getenv("BENCH_METHOD") or "GET"
local unique = os.getenv("BENCH_UNIQUE") ~= nil
local targets = {}
local next_id = 0

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    fields[#fields + 1] = field
  end
  return fields
end

local function load(file)
  local list = {}
  for line in io.lines(file) do
    if line ~= "" then
      local f = split(line)
      list[#list + 1] = { path = f[1], token = f[2], body = f[3] }
    end
  end
  return list
end

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

function init(args)
  targets = load(os.getenv("BENCH_TARGETS"))
  position = (thread_id or 0) * 7919 % #targets
  counter = 0
end

function request()
  position = position % #targets + 1
  counter = counter + 1
  local target = targets[position]
  local headers = { ["Accept"] = "application/json" }
  if target.token and target.token ~= "-" then
    headers["Authorization"] = "Token " .. target.token
  end
  local body = nil
  if target.body and target.body ~= "-" then
    headers["Content-Type"] = "application/json"
    body = target.body
    if unique then
      body = body:gsub("{n}", tostring(thread_id) .. "x" .. tostring(counter))
    end
  end
  return wrk.format(method, target.path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
