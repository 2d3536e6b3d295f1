-- Checks of severity.lua: `lua severity_test.lua` from this directory (run by
-- bench/harness/test_peers.py when a Lua interpreter is installed).
dofile("severity.lua")
local cases = {
  { { level = "ERROR", message = "x" }, "ERROR" },
  { { lvl = "Warning" }, "WARNING" },
  { { levelname = "notice" }, "INFO" },
  { { log = { level = "FATAL" } }, "CRITICAL" },
  { { severity = "err" }, "ERROR" },
  { { message = "Payment failed for order 17" }, "ERROR" },
  { { message = "3 errors so far" }, "INFO" }, -- word-bounded: "errors" is not "error"
  { { message = "critical error in worker" }, "CRITICAL" }, -- the strongest keyword wins
  { { message = "GET /cart", status = 503 }, "ERROR" },
  { { message = "GET /cart", status = 404 }, "WARNING" },
  { { message = "deprecated call", status = 500 }, "ERROR" },
  { { level = "info", message = "fatal: ignored, the level field decides" }, "INFO" },
}
for i, case in ipairs(cases) do
  local code, ts, record = severity("w1", 7, case[1])
  assert(code == 2 and ts == 7, "case " .. i .. ": the record must be kept, its timestamp too")
  assert(record.severity_class == case[2],
    "case " .. i .. ": expected " .. case[2] .. ", got " .. tostring(record.severity_class))
end
print(#cases .. " passed, 0 failed")
