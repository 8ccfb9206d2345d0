-- One wrk script for every HTTP case of the suite (bench/suite.py).
--
-- Environment:
--   BENCH_METHOD   GET (default) or POST
--   BENCH_TARGETS  a file of request lines: "<path>\t<token or ->\t<body or ->";
--                  each thread walks them in turn, starting at its own offset
--   BENCH_UNIQUE   when set, "{n}" in a body becomes a number unique to this
--                  request (thread id and counter), for bodies that must differ
-- Writes that must each change something (a favorite of a pair not yet
-- favorited) walk a grid instead of a list, every pair once:
--   BENCH_GRID     "<path with {item}>\t<tokens file>\t<items file>": request n
--                  takes token n mod T and item n div T (T tokens, I items)
--   BENCH_STARTS   where each thread starts ("a,b"; the suite passes on
--                  where the run before stopped), or by default thread k of
--                  BENCH_THREADS at k/BENCH_THREADS of the grid
-- The BENCH line also gives "positions", where each thread stopped, and
-- "sent": requests sent, answered or not (wrk counts only those answered;
-- those in flight at the end were carried out by the server all the same).
-- At the end it prints one line, "BENCH {json}", that the suite parses.

local method = os.getenv("BENCH_METHOD") or "GET"
local unique = os.getenv("BENCH_UNIQUE") ~= nil
local targets = {}
local next_id = 0
local threads = {}

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
  threads[#threads + 1] = thread
end

local grid = nil

local function lines(file)
  local list = {}
  for line in io.lines(file) do
    if line ~= "" then
      list[#list + 1] = line
    end
  end
  return list
end

function init(args)
  counter = 0
  local spec = os.getenv("BENCH_GRID")
  if spec then
    local f = split(spec)
    grid = { path = f[1], tokens = lines(f[2]), items = lines(f[3]) }
    local starts = os.getenv("BENCH_STARTS")
    if starts then
      local list = {}
      for n in starts:gmatch("%d+") do
        list[#list + 1] = tonumber(n)
      end
      position = list[(thread_id or 0) + 1]
    else
      local share = math.floor(#grid.tokens * #grid.items / tonumber(os.getenv("BENCH_THREADS")))
      position = (thread_id or 0) * share
    end
    return
  end
  targets = load(os.getenv("BENCH_TARGETS"))
  position = (thread_id or 0) * 7919 % #targets
end

local function grid_target()
  local t, i = #grid.tokens, #grid.items
  local n = position % (t * i)
  position = position + 1
  local item = grid.items[math.floor(n / t) + 1]
  return { path = grid.path:gsub("{item}", item), token = grid.tokens[n % t + 1] }
end

function request()
  counter = counter + 1
  local target
  if grid then
    target = grid_target()
  else
    position = position % #targets + 1
    target = targets[position]
  end
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
  local positions = {}
  local sent = 0
  for _, thread in ipairs(threads) do
    positions[#positions + 1] = tostring(thread:get("position") or 0)
    sent = sent + (thread:get("counter") or 0)
  end
  io.write(string.format(
    'BENCH {"positions": [%s], "sent": %d, "requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    table.concat(positions, ", "), sent, summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
