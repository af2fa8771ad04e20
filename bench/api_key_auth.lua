-- wrk script for bench/api_key_auth.sh: GET ROUTE with one authentication header,
-- AUTH_HEADER, whose value cycles through the comma-separated AUTH_VALUES (a session cookie,
-- or several API keys so that no key reaches its per-minute rate limit during a run).

local route = os.getenv("ROUTE") or "/api/config"
local header = os.getenv("AUTH_HEADER")
local values = {}
for value in string.gmatch(os.getenv("AUTH_VALUES") or "", "[^,]+") do
    values[#values + 1] = value
end
local sent = 0

request = function()
    sent = sent + 1
    wrk.headers[header] = values[sent % #values + 1]
    return wrk.format("GET", route)
end

done = function(summary, latency, requests)
    local seconds = summary.duration / 1e6
    io.write(string.format(
        "RESULT requests=%d seconds=%.2f rate=%.1f non2xx=%d socket_errors=%d " ..
        "p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f\n",
        summary.requests, seconds, summary.requests / seconds, summary.errors.status,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency.max, latency.mean))
end
