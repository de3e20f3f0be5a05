-- wrk script for scripts/bench-webhook.sh: every request is a distinct signed X Activity API
-- delivery, POST /x/webhook, read from BODIES (a file of "<signature>\t<body>" lines made by the
-- script with the consumer secret the service runs with). At the end it prints:
--   webhooks: sent=<requests written> ok=<200 answers> other=<other answers> inflight=<...>

TALLY_LABEL = "webhooks"
dofile("scripts/wrk-tally.lua")

function init(args)
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
