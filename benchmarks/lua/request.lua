-- One request generator for every scenario; benchmarks/suite/spec.py renders the
-- same templates for the open-loop client, so both load models send identical requests.
--
--   wrk ... -s request.lua URL -- METHOD PATHS_FILE BODY_FILE COUNT RUN_ID
--
-- PATHS_FILE holds one path template a line (used in rotation); BODY_FILE is a body
-- template or "-" for none.  In templates __N__ becomes counter % COUNT (rotating over
-- pre-created entities), __UID__ a value unique to this run (new entity ids) and __I__
-- the request counter (from 1).

local method, paths, body_parts, count, run_id
local counter = 0
local next_thread = 0

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

local function read_file(name)
  local f = assert(io.open(name, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- Split a template once into literal strings and placeholder numbers (1 N, 2 UID, 3 I).
local markers = { {"__N__", 1}, {"__UID__", 2}, {"__I__", 3} }

local function split(template)
  local parts = {}
  local pos = 1
  while true do
    local s, e, marker
    for _, m in ipairs(markers) do
      local ms, me = string.find(template, m[1], pos, true)
      if ms and (not s or ms < s) then
        s, e, marker = ms, me, m[2]
      end
    end
    if not s then
      break
    end
    parts[#parts + 1] = string.sub(template, pos, s - 1)
    parts[#parts + 1] = marker
    pos = e + 1
  end
  parts[#parts + 1] = string.sub(template, pos)
  return parts
end

local function render(parts, n, uid, i)
  local out = {}
  for k = 1, #parts do
    local part = parts[k]
    if part == 1 then
      out[k] = tostring(n)
    elseif part == 2 then
      out[k] = uid
    elseif part == 3 then
      out[k] = tostring(i)
    else
      out[k] = part
    end
  end
  return table.concat(out)
end

function init(args)
  method = args[1]
  paths = {}
  for line in io.lines(args[2]) do
    if #line > 0 then
      paths[#paths + 1] = split(line)
    end
  end
  if args[3] ~= "-" then
    body_parts = split(read_file(args[3]))
  end
  count = tonumber(args[4])
  run_id = args[5]
  tid = tid or 0
end

function request()
  counter = counter + 1
  local n = counter % count
  local uid = run_id .. "-" .. tid .. "-" .. counter
  local path = render(paths[(counter % #paths) + 1], n, uid, counter)
  local body = nil
  if body_parts then
    body = render(body_parts, n, uid, counter)
  end
  return wrk.format(method, path, nil, body)
end
