-- POST /users with a username no other request uses: the run tag (new for every wrk run),
-- the thread id and a per-thread counter. Any 409 is a harness bug or a server bug.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local headers, prefix
local n = 0

function init(args)
  headers = {
    ["Authorization"] = "Bearer " .. bench_env("BENCH_KEY"),
    ["Content-Type"] = "application/json",
  }
  prefix = "bench-" .. bench_env("BENCH_TAG") .. "-t" .. tostring(tid) .. "-"
end

function request()
  n = n + 1
  local body = '{"username":"' .. prefix .. n .. '","fullName":"Bench User ' .. n .. '"}'
  return wrk.format("POST", "/users", headers, body)
end
