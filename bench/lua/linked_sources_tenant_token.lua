-- GET /tenants/{id}/linked-sources the way hotglue's guide calls it: the publishable key and a
-- tenant token (RS256, signed by the customer's backend) naming that tenant, rotating over the
-- seeded users. BENCH_TENANT_TOKENS_FILE has one "userId token" pair per line.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local pairs_, key, i

function init(args)
  pairs_ = {}
  for _, line in ipairs(bench_read_lines(bench_env("BENCH_TENANT_TOKENS_FILE"))) do
    local id, token = line:match("^(%S+) (%S+)$")
    table.insert(pairs_, { id = id, token = token })
  end
  key = bench_env("BENCH_PUBLISHABLE_KEY")
  i = ((tid or 1) - 1) * math.floor(#pairs_ / 2)
end

function request()
  i = i % #pairs_ + 1
  local p = pairs_[i]
  return wrk.format(
    "GET",
    "/tenants/" .. p.id .. "/linked-sources",
    { ["x-api-key"] = key, ["x-tenant-token"] = p.token }
  )
end
