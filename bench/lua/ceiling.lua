-- The ceiling: a bare FastAPI route served with Tether's server flags.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local req

function init(args)
  req = wrk.format("GET", "/ping")
end

function request()
  return req
end
