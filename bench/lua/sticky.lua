-- Scenario (c): sticky split keyed on a header. Every request carries an X-User header taken
-- round-robin from 1000 distinct users; the requests are formatted once in init() so wrk spends
-- as little as possible per request on Lua.
local users = 1000
local reqs = {}
local i = 0

function init(args)
  for u = 1, users do
    reqs[u] = wrk.format("GET", "/sticky/item", { ["X-User"] = "user-" .. u })
  end
end

function request()
  i = i % users + 1
  return reqs[i]
end
