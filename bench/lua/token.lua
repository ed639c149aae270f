-- GET /users/{id}/token with a secret key, rotating over the seeded user ids.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local ids, headers, i

function init(args)
  ids = bench_read_lines(bench_env("BENCH_IDS_FILE"))
  headers = { ["Authorization"] = "Bearer " .. bench_env("BENCH_KEY") }
  -- Threads start at different points of the list.
  i = ((tid or 1) - 1) * math.floor(#ids / 2)
end

function request()
  i = i % #ids + 1
  return wrk.format("GET", "/users/" .. ids[i] .. "/token", headers)
end
