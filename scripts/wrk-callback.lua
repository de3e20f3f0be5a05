-- wrk script for scripts/bench-callback.sh: every request is a distinct OAuth 1.0a approval,
--   GET /callback?oauth_token=<run>-<thread>-<n>&oauth_verifier=v
-- unique across threads (thread number), within a thread (counter) and across runs against the
-- same DATA_DIR (RUN, from the environment). At the end it prints, summed over threads:
--   callbacks: sent=<requests written> ok=<200 answers> other=<other answers> inflight=<sent without an answer>
-- so the caller can compare the store's event count with the 200s (requests still in flight
-- when wrk stopped may or may not have been stored; wrk never saw their answer).

local threads = {}
local counter = 1
local run = os.getenv("RUN") or tostring(os.time())

function setup(thread)
    thread:set("id", counter)
    thread:set("run", run)
    table.insert(threads, thread)
    counter = counter + 1
end

function init(args)
    sent = 0
    ok = 0
    other = 0
    prefix = "/callback?oauth_token=" .. run .. "-" .. id .. "-"
end

function request()
    sent = sent + 1
    return wrk.format("GET", prefix .. sent .. "&oauth_verifier=v")
end

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
    io.write(string.format("callbacks: sent=%d ok=%d other=%d inflight=%d\n", s, o, x, s - o - x))
end
