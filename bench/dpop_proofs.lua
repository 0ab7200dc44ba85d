-- wrk script for bench/http.sh, scenario `dpop`: every request carries the next of the DPoP proofs
-- listed one per line in $JWTGATE_BENCH_PROOFS (each with its own jti: a client's fresh proof per
-- request), with the Authorization header given by -H. The requests are formatted once in init(),
-- so wrk's cost per request stays that of a plain run. Running out of proofs would replay them:
-- the gateway refuses replays, and bench/http.sh rejects a run with non-2xx answers.

local requests = {}
local next_index = 1

function init(args)
   local path = os.getenv("JWTGATE_BENCH_PROOFS")
   if path == nil then
      error("set JWTGATE_BENCH_PROOFS to the proofs file")
   end
   for proof in io.lines(path) do
      if proof ~= "" then
         wrk.headers["DPoP"] = proof
         requests[#requests + 1] = wrk.format()
      end
   end
   if #requests == 0 then
      error("no proofs in " .. path)
   end
end

function request()
   local r = requests[next_index]
   next_index = next_index % #requests + 1
   return r
end
