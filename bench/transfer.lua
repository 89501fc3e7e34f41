-- transfer.lua -- POST /api/v1/transfers of 0.01 between two distinct random
-- accounts of the bench user (ids BENCH_ACCT_LO..BENCH_ACCT_HI), with a new
-- Idempotency-Key each time.
-- Env: BENCH_TOKEN, BENCH_ACCT_LO, BENCH_ACCT_HI, BENCH_RUN_ID.
local token = os.getenv("BENCH_TOKEN")
local lo = tonumber(os.getenv("BENCH_ACCT_LO") or "1")
local hi = tonumber(os.getenv("BENCH_ACCT_HI") or "100")
local run = os.getenv("BENCH_RUN_ID") or tostring(os.time())
local n = hi - lo + 1
local nthreads = 0
local counter = 0

function setup(thread)
   thread:set("tid", nthreads)
   nthreads = nthreads + 1
end

function init(args)
   math.randomseed(os.time() + (tid or 0))
end

function request()
   counter = counter + 1
   local from = math.random(lo, hi)
   local to = lo + (from - lo + math.random(1, n - 1)) % n
   local body = string.format('{"from_account_id":%d,"to_account_id":%d,"amount":"0.01"}',
                              from, to)
   local headers = {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = run .. "-" .. (tid or 0) .. "-" .. counter,
   }
   return wrk.format("POST", "/api/v1/transfers", headers, body)
end
