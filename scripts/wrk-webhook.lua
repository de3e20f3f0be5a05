-- wrk script for scripts/bench-webhook.sh: every request is a distinct signed X Activity API
-- delivery, POST /x/webhook, read from BODIES (a file of "<signature>\t<body>" lines made by the
-- script with the consumer secret the service runs with). At the end it prints:
--   webhooks: sent=<requests written> stored=<200 answers> other=<other answers>

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    sent = 0
    ok = 0
    other = 0
    deliveries = {}
    for line in io.lines(os.getenv("BODIES")) do
        local signature, body = line:match("^([^\t]+)\t(.*)$")
        table.insert(deliveries, wrk.format("POST", "/x/webhook", {
            ["content-type"] = "application/json; charset=utf-8",
            ["x-twitter-webhooks-signature"] = signature,
        }, body))
    end
end

function request()
    sent = sent + 1
    -- Past the end the bodies repeat: repeats are checked and recognised, never stored twice.
    return deliveries[(sent - 1) % #deliveries + 1]
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
    io.write(string.format("webhooks: sent=%d stored=%d other=%d\n", s, o, x))
end
