-- GET /sdk/me with a user token (ES256, verified on every request).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local req

function init(args)
  req = wrk.format("GET", "/sdk/me", { ["Authorization"] = "Bearer " .. bench_env("BENCH_TOKEN") })
end

function request()
  return req
end
