-- Shared by the wrk scripts (dofile'd): counts the answers of each thread and prints, summed over
-- threads, "<TALLY_LABEL>: sent=<requests written> ok=<200 answers> other=<other answers>
-- inflight=<sent without an answer>", so the caller can compare what the store holds with the
-- 200s (requests still in flight when wrk stopped may or may not have been stored), then the
-- latency at more percentiles than wrk's own four. Each thread counts `sent` in its own
-- request().

local threads = {}

function setup(thread)
    thread:set("id", #threads + 1)
    table.insert(threads, thread)
    if tally_setup then tally_setup(thread) end
end

sent, ok, other = 0, 0, 0

function response(status, headers, body)
    if status == 200 then
        ok = ok + 1
    else
        other = other + 1
    end
end

function done(summary, latency, requests)
    local s, o, x = 0, 0, 0
    for _, thread in ipairs(threads) do
        s = s + thread:get("sent")
        o = o + thread:get("ok")
        x = x + thread:get("other")
    end
    io.write(string.format("%s: sent=%d ok=%d other=%d inflight=%d\n", TALLY_LABEL, s, o, x, s - o - x))
    io.write("latency ms:")
    for _, p in ipairs({50, 90, 95, 99, 99.9}) do
        io.write(string.format(" p%s=%.2f", p, latency:percentile(p) / 1000))
    end
    io.write("\n")
end
