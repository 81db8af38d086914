-- Scenario (d): a new connection per request. wrk reconnects after every response that does not
-- keep the connection alive; the proxies answer "Connection: close" to this request.
wrk.headers["Connection"] = "close"
