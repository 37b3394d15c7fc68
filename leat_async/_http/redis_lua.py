"""The Lua scripts behind :class:`~leat_async._http.redis.RedisRateState`.

Each runs atomically in Redis and reads Redis's own clock (``TIME``). They port the rules of
:class:`~leat_async._http.pacing.ServerBudget` and the sliding-window cap to a fleet of workers.
"""

from __future__ import annotations

from .pacing import AMBIGUOUS, LOG_KEEP, PROBE_POLL, RESET_MARGIN

__all__ = [
    "ADMIT",
    "ANSWER",
    "BUDGET_TTL",
    "LOG_KEEP",
    "PAUSE",
    "PROBE_TTL",
    "UNSEND",
    "render",
]

#: Seconds the server's budget (limit, window) is remembered after the last request.
BUDGET_TTL = 600.0
#: Seconds a probe holds the budget when its answer never comes (a timeout, a crash).
PROBE_TTL = 5.0

# KEYS: log, budget, pause, probe, flight. Members of log and flight: "<µs>:<owner>:<n>".
PRELUDE = """
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = now_us / 1000000
local function us(x) return string.format('%.0f', x) end
local function drop(key, at, owner)  -- this worker's send at ``at``: true when it was there
  local prefix = at .. ':' .. owner .. ':'
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, at, at)) do
    if string.sub(m, 1, #prefix) == prefix then redis.call('ZREM', key, m); return true end
  end
  return false
end
local FIELDS = {'limit', 'tokens', 'window', 'wstart', 'reset', 'last'}
local B = {}
local raw = redis.call('HMGET', KEYS[2], 'answered', unpack(FIELDS))
B.answered = raw[1] == '1'
for i, f in ipairs(FIELDS) do B[f] = tonumber(raw[i + 1]) end
local function save()
  local set, del = {'answered', B.answered and '1' or '0'}, {}
  for _, f in ipairs(FIELDS) do
    if B[f] == nil then table.insert(del, f)
    else table.insert(set, f); table.insert(set, string.format('%.17g', B[f])) end
  end
  redis.call('HSET', KEYS[2], unpack(set))
  if #del > 0 then redis.call('HDEL', KEYS[2], unpack(del)) end
  redis.call('PEXPIRE', KEYS[2], @BUDGET_TTL_MS@)
end
"""

# ARGV: rate limit (0: none), this worker's requests in flight, owner, a unique suffix, the cap's
# period in µs, then times (µs) of sends to add. Returns {wait (s), now (µs)} as strings.
ADMIT = (
    PRELUDE
    + """
local limit, inflight = tonumber(ARGV[1]), tonumber(ARGV[2])
local owner, period = ARGV[3], tonumber(ARGV[5])
for _, k in ipairs({KEYS[1], KEYS[5]}) do
  redis.call('ZREMRANGEBYSCORE', k, '-inf', us(now_us - @LOG_KEEP_US@))
end
for i = 6, #ARGV do  -- sends this worker made in-process while Redis was away
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i] .. ':' .. owner .. ':r' .. i)
end
if #ARGV >= 6 then redis.call('PEXPIRE', KEYS[1], @LOG_KEEP_MS@) end
local mine = {}  -- beyond this worker's requests in flight: sends whose answer never came
for _, m in ipairs(redis.call('ZRANGE', KEYS[5], 0, -1)) do
  if string.find(m, ':' .. owner .. ':', 1, true) then table.insert(mine, m) end
end
for i = 1, #mine - inflight do redis.call('ZREM', KEYS[5], mine[i]) end
local wait = 0
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if paused > now_us then wait = (paused - now_us) / 1000000 end
if B.reset and now >= B.reset then B.reset = nil; B.tokens = B.limit; B.last = nil end
local probe = false
if not B.answered then probe = true
elseif B.tokens == nil or B.tokens >= 1 then probe = false
elseif B.reset then wait = math.max(wait, B.reset - now)
else probe = true end
if probe then  -- one request goes alone (for every worker) and its answer tells the budget
  local holder = redis.call('GET', KEYS[4])
  local own = holder and string.sub(holder, 1, #owner + 1) == owner .. ':'
  if inflight > 0 or (holder and not own) then wait = math.max(wait, @PROBE_POLL@) end
end
if limit > 0 then
  local from = '(' .. us(now_us - period)
  local n = redis.call('ZCOUNT', KEYS[1], from, '+inf')
  if n >= limit then
    local e = redis.call('ZRANGEBYSCORE', KEYS[1], from, '+inf', 'WITHSCORES',
                         'LIMIT', n - limit, 1)
    wait = math.max(wait, (tonumber(e[2]) + period - now_us) / 1000000)
  end
end
if wait <= 0 then
  local member = us(now_us) .. ':' .. owner .. ':' .. ARGV[4]
  for _, k in ipairs({KEYS[1], KEYS[5]}) do
    redis.call('ZADD', k, us(now_us), member)
    redis.call('PEXPIRE', k, @LOG_KEEP_MS@)
  end
  if probe then redis.call('SET', KEYS[4], owner .. ':' .. us(now_us), 'PX', @PROBE_TTL_MS@) end
  if B.tokens then B.tokens = B.tokens - 1 end
end
save()
return {string.format('%.6f', math.max(wait, 0)), us(now_us)}
"""
)

# ARGV: the send's time in µs, this worker's other requests in flight, X-RateLimit-Limit,
# X-RateLimit-Remaining (empty: absent), owner, "1" when the answer asks for a pause.
ANSWER = (
    PRELUDE
    + """
local sent, owner = ARGV[1], ARGV[5]
drop(KEYS[5], sent, owner)
-- not in this answer's count: every send made after it, and every other one still in flight
local others = redis.call('ZCOUNT', KEYS[1], '(' .. sent, '+inf')
others = math.max(tonumber(ARGV[2]), others + redis.call('ZCOUNT', KEYS[5], '-inf', '(' .. sent))
local limit, remaining = tonumber(ARGV[3]), tonumber(ARGV[4])
B.answered = true
if limit and limit > 0 then B.limit = limit end
if remaining and B.limit then
  local rose = B.last ~= nil and remaining > B.last
  if (B.last == nil or rose) and remaining >= B.limit - 1 - others
      and not (B.reset and now < B.reset) then
    B.wstart = (tonumber(sent) / 1000000 + now) / 2  -- a fresh window opened as this arrived
    if B.window then B.reset = B.wstart + B.window + @RESET_MARGIN@ end
    rose = false
  end
  if rose then  -- older news than the last answer (workers' answers cross): it only lowers
    B.tokens = math.min(B.tokens or math.huge, remaining - others)
  else
    B.last = remaining
    B.tokens = remaining - others
  end
end
save()
if ARGV[6] == '1' then  -- refused: no probe goes until the pause is set
  redis.call('SET', KEYS[4], 'refused', 'PX', @PROBE_TTL_MS@)
elseif redis.call('GET', KEYS[4]) == owner .. ':' .. sent then  -- the probe's answer
  redis.call('DEL', KEYS[4])
end
return 1
"""
)

# ARGV: the send's time in µs, owner.
UNSEND = (
    PRELUDE
    + """
drop(KEYS[5], ARGV[1], ARGV[2])
if drop(KEYS[1], ARGV[1], ARGV[2]) and B.tokens then B.tokens = B.tokens + 1; save() end
if redis.call('GET', KEYS[4]) == ARGV[2] .. ':' .. ARGV[1] then redis.call('DEL', KEYS[4]) end
return 1
"""
)

# ARGV: seconds. The pause holds every worker; the 429 also tells the server's window.
PAUSE = (
    PRELUDE
    + """
local seconds = tonumber(ARGV[1])
local till = now_us + seconds * 1000000
if till > tonumber(redis.call('GET', KEYS[3]) or '0') then
  redis.call('SET', KEYS[3], us(till), 'PX', math.ceil(seconds * 1000) + 1000)
end
redis.call('DEL', KEYS[4])
B.tokens = 0; B.last = 0; B.reset = now + seconds + @RESET_MARGIN@
if B.wstart and now > B.wstart then  -- as ServerBudget.on_refused: skip ambiguous lessons
  local elapsed = now - B.wstart
  local frac = elapsed % 1
  if seconds ~= math.floor(seconds) or elapsed < 1 or frac >= @AMBIGUOUS@ then
    local bound = elapsed + seconds
    local whole = math.floor(bound + 0.05)
    if whole >= 1 then bound = whole end
    B.window = bound
  end
end
save()
return 1
"""
)


def render(source: str) -> str:
    """The script with its constants filled in."""
    constants = {
        "@BUDGET_TTL_MS@": int(BUDGET_TTL * 1000),
        "@LOG_KEEP_US@": int(LOG_KEEP * 1_000_000),
        "@LOG_KEEP_MS@": int(LOG_KEEP * 1000),
        "@PROBE_TTL_MS@": int(PROBE_TTL * 1000),
        "@PROBE_POLL@": PROBE_POLL,
        "@AMBIGUOUS@": AMBIGUOUS,
        "@RESET_MARGIN@": RESET_MARGIN,
    }
    for name, value in constants.items():
        source = source.replace(name, repr(value))
    return source
