-- order_create.lua -- POST /api/v1/orders: a random customer, two distinct random
-- products (quantities 1 and 2), notes, and a new Idempotency-Key each time
-- (BENCH_RUN_ID, the thread number and a per-thread counter).
-- Env: BENCH_TOKEN, BENCH_NPRODUCTS, BENCH_NCUSTOMERS, BENCH_RUN_ID.
local token = os.getenv("BENCH_TOKEN")
local nprod = tonumber(os.getenv("BENCH_NPRODUCTS") or "10000")
local ncust = tonumber(os.getenv("BENCH_NCUSTOMERS") or "1000")
local run = os.getenv("BENCH_RUN_ID") or tostring(os.time())
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
   local p1 = math.random(nprod)
   local p2 = (p1 + math.random(0, nprod - 2)) % nprod + 1
   local body = string.format(
      '{"customer_id":%d,"items":[{"product_id":%d,"quantity":1},' ..
      '{"product_id":%d,"quantity":2}],"notes":"bench"}',
      math.random(ncust), p1, p2)
   local headers = {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = run .. "-" .. (tid or 0) .. "-" .. counter,
   }
   return wrk.format("POST", "/api/v1/orders", headers, body)
end
