-- wrk script for bench/http.sh, run (c): every request carries the next of the distinct tokens
-- listed one per line in $JWTGATE_BENCH_TOKENS, so no two requests in a row share a token.
-- The requests are formatted once in init(), so wrk's own cost per request stays that of a plain
-- run; the headers given with -H (X-Forwarded-Method/-Uri) are kept.

local requests = {}
local next_index = 1

function init(args)
   local path = os.getenv("JWTGATE_BENCH_TOKENS")
   if path == nil then
      error("set JWTGATE_BENCH_TOKENS to the tokens file")
   end
   for token in io.lines(path) do
      if token ~= "" then
         wrk.headers["Authorization"] = "Bearer " .. token
         requests[#requests + 1] = wrk.format()
      end
   end
   if #requests == 0 then
      error("no tokens in " .. path)
   end
end

function request()
   local r = requests[next_index]
   next_index = next_index % #requests + 1
   return r
end
