-- product_get.lua -- GET /api/v1/products/{id}, id uniform in 1..BENCH_NPRODUCTS.
local n = tonumber(os.getenv("BENCH_NPRODUCTS") or "10000")

function init(args)
   math.randomseed(os.time() + (tid or 0))
end

function request()
   return wrk.format("GET", "/api/v1/products/" .. math.random(n))
end
