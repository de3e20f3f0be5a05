-- wrk script for scripts/bench-callback.sh: every request is a distinct OAuth 1.0a approval,
--   GET /callback?oauth_token=<run>-<thread>-<n>&oauth_verifier=v
-- unique across threads (thread number), within a thread (counter) and across runs against the
-- same DATA_DIR (RUN, from the environment). At the end it prints, summed over threads:
--   callbacks: sent=<requests written> ok=<200 answers> other=<other answers> inflight=<sent without an answer>

TALLY_LABEL = "callbacks"
dofile("scripts/wrk-tally.lua")

local run = os.getenv("RUN") or tostring(os.time())

function tally_setup(thread)
    thread:set("run", run)
end

function init(args)
    prefix = "/callback?oauth_token=" .. run .. "-" .. id .. "-"
end

function request()
    sent = sent + 1
    return wrk.format("GET", prefix .. sent .. "&oauth_verifier=v")
end
