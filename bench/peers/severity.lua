-- Fluent Bit Lua filter for the side-by-side benchmark (bench/peers/run.sh):
-- the severity of a W1 (app-json) event, the way Spate classifies it
-- (DESIGN.md, classification): a level field (`level`, `severity`, `lvl`,
-- `levelname`, nested `log.level`) mapped onto the ladder, else the strongest
-- keyword of the message (word-bounded, case-insensitive) and the HTTP status.
-- Writes the result to `severity_class`.

local CRITICAL, ERROR, WARNING, INFO = 4, 3, 2, 1
local NAMES = { [1] = "INFO", [2] = "WARNING", [3] = "ERROR", [4] = "CRITICAL" }

local KEYWORDS = {
  { CRITICAL, { "critical", "fatal", "panic", "emergency" } },
  { ERROR, { "error", "exception", "failed", "failure" } },
  { WARNING, { "warning", "warn", "deprecated" } },
}

local function from_level(value)
  if type(value) ~= "string" then
    return nil
  end
  local l = string.lower(value)
  if l:find("^crit") or l:find("^fatal") or l:find("^emerg") or l:find("^panic") or l:find("^alert") then
    return CRITICAL
  elseif l:find("^err") then
    return ERROR
  elseif l:find("^warn") then
    return WARNING
  elseif l ~= "" then
    return INFO
  end
  return nil
end

local function from_message(message, status)
  local best = INFO
  if type(message) == "string" then
    local m = string.lower(message)
    for _, group in ipairs(KEYWORDS) do
      local level, words = group[1], group[2]
      if level > best then
        for _, w in ipairs(words) do
          if m:find("%f[%w]" .. w .. "%f[%W]") then
            best = level
            break
          end
        end
      end
    end
  end
  local code = tonumber(status)
  if code then
    if code >= 500 and code < 600 and best < ERROR then
      best = ERROR
    elseif code >= 400 and code < 500 and best < WARNING then
      best = WARNING
    end
  end
  return best
end

function severity(tag, timestamp, record)
  local level = from_level(record["level"]) or from_level(record["severity"])
    or from_level(record["lvl"]) or from_level(record["levelname"])
  if level == nil and type(record["log"]) == "table" then
    level = from_level(record["log"]["level"])
  end
  if level == nil then
    level = from_message(record["message"], record["status"])
  end
  record["severity_class"] = NAMES[level]
  -- 2: the record was modified, the timestamp kept.
  return 2, timestamp, record
end
