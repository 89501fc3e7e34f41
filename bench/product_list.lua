-- product_list.lua -- GET /api/v1/products?page=N&page_size=20, N uniform over
-- the pages of BENCH_NPRODUCTS products (every page is full).
local pages = math.floor(tonumber(os.getenv("BENCH_NPRODUCTS") or "10000") / 20)

function init(args)
   math.randomseed(os.time() + (tid or 0))
end

function request()
   return wrk.format("GET", "/api/v1/products?page=" .. math.random(pages) .. "&page_size=20")
end
