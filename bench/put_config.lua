-- wrk script for bench/api_mutation.sh: PUT /api/config with a session cookie and the CSRF
-- token, alternating two bodies so that every request really changes the config (and so
-- writes the change and its audit entry in one durable transaction).
--
-- With GET_HEALTH=1 it sends GET /health instead: the anchor, the same connections and pacing
-- through the same HTTP stack with no database work.
--
-- wrk has no fixed-rate mode; each connection pauses DELAY_MS after every response, so with
-- C connections the offered rate is about C * 1000 / (DELAY_MS + latency) requests/s.

local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local bodies = { os.getenv("BODY_A"), os.getenv("BODY_B") }
local sent = 0

wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-CSRF-Token"] = os.getenv("CSRF")
wrk.headers["Cookie"] = os.getenv("COOKIE")

local get_health = os.getenv("GET_HEALTH") == "1"

request = function()
    if get_health then
        return wrk.format("GET", "/health", {}, nil)
    end
    sent = sent + 1
    return wrk.format(nil, "/api/config", nil, bodies[sent % 2 + 1])
end

-- The pause is drawn from an exponential distribution with mean DELAY_MS, as between the
-- requests of independent clients. A fixed pause puts the connections in lockstep: picd
-- commits concurrent writes together and answers them at once, so after the same fixed pause
-- they all come back at once, and every request then queues behind the whole group.
if delay_ms > 0 then
    math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
    delay = function()
        return math.floor(-delay_ms * math.log(1 - math.random()) + 0.5)
    end
end

done = function(summary, latency, requests)
    local seconds = summary.duration / 1e6
    io.write(string.format(
        "RESULT requests=%d seconds=%.2f rate=%.1f non2xx=%d socket_errors=%d " ..
        "p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.0f\n",
        summary.requests, seconds, summary.requests / seconds, summary.errors.status,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max, latency.mean))
end
