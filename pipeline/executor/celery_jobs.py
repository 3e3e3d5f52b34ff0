"""What the bot side and the GPU workers of the Celery fleet share: configuration, the Celery app,
queue names, job keys in Redis, the wire form of a request and the scripts that move a job between
states.

A job lives in Redis under `<prefix>:job:<id>` (a hash: owner, request, state, attempts, result),
its progress in the stream `<prefix>:job:<id>:events` and its images under
`<prefix>:job:<id>:image:<i>`; everything expires `result_ttl` seconds after the last change.
State changes that must happen once (start, finish, fail, cancel) are Lua scripts, so two workers
that hold the same redelivered job, or a worker and a cancelling bot, can never both win.

A running job holds a lease, `<prefix>:job:<id>:lease` (the worker's name, expiring `lease_seconds`
after its last renewal), which its worker renews every `lease_seconds / 3` seconds. A worker that dies
or hangs stops renewing; the bot's reaper then queues the job again (`REAP_SCRIPT`), so recovery takes
about `lease_seconds`, however long jobs run. Each delivery that begins the job bumps `attempts`, and a
worker writes progress or a result only while `attempts` is still its own, so a worker that wakes up
after its job was taken over can never report it a second time.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from celery import Celery

from pipeline.request import GenerationRequest, Mode

TASK_NAME = "kaika.generate"
# Celery on Redis serves priority 0 first; callers speak of tiers where a higher number is served sooner.
MAX_PRIORITY = 9
PROGRESS_MAXLEN = 200  # events kept per job stream (approximate trim); the terminal event is always last

PENDING = "pending"  # recorded, held in the bot's fair queue
RELEASED = "released"  # sent to the workers' queue
STARTED = "started"
FINISHED = "finished"
FAILED = "failed"
CANCELLED = "cancelled"
TERMINAL_STATES = frozenset({FINISHED, FAILED, CANCELLED})


@dataclass(frozen=True)
class FleetConfig:
    """Settings both sides must agree on; the CLI builds it from `Settings`."""

    redis_url: str
    key_prefix: str = "kaika"
    visibility_timeout: int = 3600  # seconds before an unacknowledged job is given to another worker
    result_ttl: int = 86400  # seconds images, progress and job records stay in Redis
    max_retries: int = 2  # extra deliveries of one job (worker lost, Redis hiccup) before it fails
    lease_seconds: int = 15  # a running job whose worker has not renewed its lease for this long is requeued

    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1

    @property
    def lease_renew_seconds(self) -> float:
        """How often a worker renews its job's lease, and the bot looks for expired ones: three chances a lease."""
        return self.lease_seconds / 3


def queue_for_model(prefix: str, model: str) -> str:
    """The Celery queue of one model: readable, and unique even when two paths share a name."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", model.rstrip("/").rsplit("/", 1)[-1])[:40] or "demo"
    digest = hashlib.sha1(model.encode()).hexdigest()[:8]
    return f"{prefix}.{readable}-{digest}"


def celery_priority(tier: int) -> int:
    """Tier 0 (everyone) … 9 (most favoured) as a Redis-transport priority, where 0 goes first."""
    return MAX_PRIORITY - max(0, min(MAX_PRIORITY, tier))


def make_celery_app(config: FleetConfig, *, results: bool = True) -> Celery:
    """A Celery app on Redis, configured for long GPU jobs that must survive a lost worker.

    Workers store each job's summary as its Celery result. The bot reads outcomes from the job's
    stream instead, so its app is made with `results=False`: sending a job then does not subscribe
    to the job's result channel (a subscription per job, never read).
    """
    backend = config.redis_url if results else None
    app = Celery("kaika", broker=config.redis_url, backend=backend, set_as_current=False)
    # Restore abandoned jobs a few times per visibility timeout, so a short timeout means quick recovery.
    restore_interval = max(1, min(10, config.visibility_timeout // 4))
    transport_options = {
        "global_keyprefix": f"{config.key_prefix}:celery:",
        "visibility_timeout": config.visibility_timeout,
        "unacked_restore_interval": restore_interval,
        "unacked_restore_throttle": 1,
        "priority_steps": list(range(MAX_PRIORITY + 1)),
        "queue_order_strategy": "priority",
    }
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        broker_transport_options=transport_options,
        result_backend_transport_options={"global_keyprefix": f"{config.key_prefix}:celery:"},
        result_expires=config.result_ttl,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_priority=celery_priority(0),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    return app


@dataclass(frozen=True)
class JobKeys:
    prefix: str
    job_id: str

    @property
    def job(self) -> str:
        return f"{self.prefix}:job:{self.job_id}"

    @property
    def events(self) -> str:
        return f"{self.job}:events"

    @property
    def lease(self) -> str:
        return f"{self.job}:lease"

    def image(self, index: int) -> str:
        return f"{self.job}:image:{index}"


def models_key(prefix: str) -> str:
    """A hash queue → JSON of the model a worker serves there (model id, native size)."""
    return f"{prefix}:models"


_BYTES_FIELDS = ("source_image", "mask_image")


def request_to_payload(request: GenerationRequest) -> dict[str, Any]:
    """The request as JSON-safe data; images travel as base64 so no pickle crosses the broker."""
    payload = dataclasses.asdict(request)
    payload["mode"] = request.mode.value
    for name in _BYTES_FIELDS:
        if payload[name] is not None:
            payload[name] = base64.b64encode(payload[name]).decode("ascii")
    return payload


def request_from_payload(payload: dict[str, Any]) -> GenerationRequest:
    values = dict(payload)
    values["mode"] = Mode(values["mode"])
    for name in _BYTES_FIELDS:
        if values.get(name) is not None:
            values[name] = base64.b64decode(values[name])
    known = {field.name for field in dataclasses.fields(GenerationRequest)}
    return GenerationRequest(**{name: value for name, value in values.items() if name in known})


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


# --- Lua scripts; every one refreshes the TTL of the keys it touches -------------------------------
# KEYS[1] job hash, KEYS[2] event stream; ARGV[1] ttl, ARGV[2] stream maxlen, then script arguments.

_NOW = "local t = redis.call('TIME'); local now = tostring(t[1] + t[2] / 1000000)\n"
_TERMINAL = "local function terminal(s) return s == 'finished' or s == 'failed' or s == 'cancelled' end\n"
_TOUCH = "redis.call('EXPIRE', KEYS[1], ARGV[1]); redis.call('EXPIRE', KEYS[2], ARGV[1])\n"

# Record a job before it is queued. ARGV[3] owner, ARGV[4] request JSON, ARGV[5] priority tier.
# Returns 0 when the id is already taken (the caller attaches).
CREATE_SCRIPT = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[3], 'request', ARGV[4], 'priority', ARGV[5],
           'state', 'pending', 'attempts', 0, 'submitted_at', now)
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
)

# Mark a pending job as handed to the workers.
RELEASE_SCRIPT = (
    _TERMINAL
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or terminal(state) then return 0 end
if state == 'pending' then redis.call('HSET', KEYS[1], 'state', 'released') end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
)

# A worker takes a delivery of the job. KEYS[3] lease; ARGV[3] max attempts, ARGV[4] worker name,
# ARGV[5] lease milliseconds. Returns {decision, attempt, queued seconds}: 'run', or why not ('missing',
# a terminal state, or 'leased': another worker holds the job and is alive).
BEGIN_SCRIPT = (
    _NOW
    + _TERMINAL
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', 0, '0'} end
if terminal(state) then return {state, 0, '0'} end
local holder = redis.call('GET', KEYS[3])
if state == 'started' and holder and holder ~= ARGV[4] then return {'leased', 0, '0'} end
if redis.call('HEXISTS', KEYS[1], 'cancel') == 1 then
  redis.call('HSET', KEYS[1], 'state', 'cancelled')
  redis.call('DEL', KEYS[3])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', 'cancelled')
  """
    + _TOUCH
    + """
  return {'cancelled', 0, '0'}
end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if attempt > tonumber(ARGV[3]) then
  local message = 'The job stopped its worker ' .. (attempt - 1) .. ' times and was given up.'
  redis.call('HSET', KEYS[1], 'state', 'failed', 'error', message)
  redis.call('DEL', KEYS[3])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', 'failed', 'message', message)
  """
    + _TOUCH
    + """
  return {'failed', attempt, '0'}
end
redis.call('HSET', KEYS[1], 'state', 'started', 'worker', ARGV[4])
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
if attempt == 1 then redis.call('HSET', KEYS[1], 'started_at', now) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', 'started', 'attempt', attempt, 'worker', ARGV[4])
"""
    + _TOUCH
    + """
local queued = tonumber(redis.call('HGET', KEYS[1], 'started_at')) - tonumber(redis.call('HGET', KEYS[1], 'submitted_at'))
return {'run', attempt, tostring(queued)}
"""
)

# Whether delivery ARGV[1] (its attempt number) still owns the job: it is the latest to begin it, and the
# job has not ended. A Lua fragment; KEYS[1] is the job hash.
_OWNED = """
local function owned(attempt)
  local state = redis.call('HGET', KEYS[1], 'state')
  return state and not terminal(state) and redis.call('HGET', KEYS[1], 'attempts') == attempt
end
"""

# The running worker keeps its lease. KEYS[1] job hash, KEYS[2] lease; ARGV[1] attempt, ARGV[2] worker
# name, ARGV[3] lease milliseconds. Returns 0 when the job is no longer this delivery's to run.
RENEW_SCRIPT = (
    _TERMINAL
    + _OWNED
    + """
if not owned(ARGV[1]) or redis.call('HGET', KEYS[1], 'state') ~= 'started' then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""
)

# A step of the running delivery. ARGV[3] attempt, ARGV[4] step, ARGV[5] total, ARGV[6] preview PNG
# ('' for none). Returns 0 (nothing written) when the job is no longer this delivery's.
STEP_SCRIPT = (
    _TERMINAL
    + _OWNED
    + """
if not owned(ARGV[3]) then return 0 end
if ARGV[6] == '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', 'step', 'step', ARGV[4], 'total', ARGV[5])
else
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', 'step', 'step', ARGV[4], 'total', ARGV[5],
             'preview', ARGV[6])
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
"""
)

# Store the images and the result once. KEYS[3] lease, KEYS[4..] image keys; ARGV[3] attempt,
# ARGV[4] result JSON, ARGV[5..] PNG bytes. Returns 1 for the delivery that finished the job, 0 when
# another delivery (or a cancel) ended it first or has begun it since.
FINISH_SCRIPT = (
    _TERMINAL
    + _OWNED
    + """
if not owned(ARGV[3]) then return 0 end
for i = 4, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[1]) end
redis.call('HSET', KEYS[1], 'state', 'finished', 'result', ARGV[4])
redis.call('DEL', KEYS[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', 'finished', 'result', ARGV[4])
"""
    + _TOUCH
    + """
return 1
"""
)

# End the job as failed or cancelled, once. KEYS[3] lease; ARGV[3] 'failed' | 'cancelled', ARGV[4]
# message, ARGV[5] '1' = only while no worker has started it (the bot cancelling a queued job),
# ARGV[6] the ending delivery's attempt ('' for the bot, which may end any delivery).
END_SCRIPT = (
    _TERMINAL
    + _OWNED
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or terminal(state) then return 0 end
if ARGV[5] == '1' and state == 'started' then return 0 end
if ARGV[6] ~= '' and not owned(ARGV[6]) then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'error', ARGV[4])
redis.call('DEL', KEYS[3])
if ARGV[3] == 'failed' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', 'failed', 'message', ARGV[4])
else
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', 'cancelled')
end
"""
    + _TOUCH
    + """
return 1
"""
)

# The reaper: a started job whose lease has expired (its worker died or hangs) goes back to 'released',
# for the caller to queue again. KEYS[3] lease. Returns 1 when the job was taken back.
REAP_SCRIPT = """
if redis.call('HGET', KEYS[1], 'state') ~= 'started' or redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', 'released')
redis.call('HINCRBY', KEYS[1], 'reaped', 1)
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
