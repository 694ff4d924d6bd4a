-- wrk script for bench/http_load.py: counts responses by status, checks that every 503
-- carries Retry-After, and prints one machine-readable line:
--   WRKRESULT requests=.. rps=.. p50_ms=.. p99_ms=.. max_ms=.. s2xx=.. s3xx=.. s4xx=..
--             s503=.. s503_retry_after=.. s5xx_other=.. timeouts=.. connect_errors=.. read_errors=..
-- Counters live in each wrk thread; done() sums them through thread:get().
-- WRK_COOKIES (optional, comma-separated session cookies): requests take turns with them,
-- so one wrk run reads several people's pages.
local threads = {}
local cookies = {}
for cookie in string.gmatch(os.getenv("WRK_COOKIES") or "", "[^,]+") do
   table.insert(cookies, cookie)
end

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   s2xx, s3xx, s4xx, s503, s503_retry_after, s5xx_other = 0, 0, 0, 0, 0, 0
   turn = 0
end

if #cookies > 0 then
   function request()
      turn = turn + 1
      wrk.headers["Cookie"] = "session=" .. cookies[turn % #cookies + 1]
      return wrk.format()
   end
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      s2xx = s2xx + 1
   elseif status < 400 then
      s3xx = s3xx + 1
   elseif status < 500 then
      s4xx = s4xx + 1
   elseif status == 503 then
      s503 = s503 + 1
      if headers["Retry-After"] or headers["retry-after"] then
         s503_retry_after = s503_retry_after + 1
      end
   else
      s5xx_other = s5xx_other + 1
   end
end

function done(summary, latency, requests)
   local sums = {s2xx = 0, s3xx = 0, s4xx = 0, s503 = 0, s503_retry_after = 0, s5xx_other = 0}
   for _, thread in ipairs(threads) do
      for key, _ in pairs(sums) do
         sums[key] = sums[key] + (thread:get(key) or 0)
      end
   end
   local seconds = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "WRKRESULT requests=%d rps=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f s2xx=%d s3xx=%d s4xx=%d " ..
      "s503=%d s503_retry_after=%d s5xx_other=%d timeouts=%d connect_errors=%d read_errors=%d write_errors=%d\n",
      summary.requests, summary.requests / seconds, latency:percentile(50) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000, sums.s2xx, sums.s3xx, sums.s4xx, sums.s503,
      sums.s503_retry_after, sums.s5xx_other, e.timeout, e.connect, e.read, e.write))
end
