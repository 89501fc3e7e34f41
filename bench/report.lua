-- report.lua -- appended to every wrk script by bench/run.sh (alone for the
-- static GET runs, which keeps wrk's fast path: no request() function).
-- Prints one machine-readable line: requests, req/s, p50/p99 in microseconds,
-- non-2xx/3xx answers and socket errors.
function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "BENCH requests=%d rps=%.1f p50_us=%d p99_us=%d non2xx=%d sockerr=%d\n",
      summary.requests, summary.requests / secs,
      latency:percentile(50), latency:percentile(99),
      e.status, e.connect + e.read + e.write + e.timeout))
end
