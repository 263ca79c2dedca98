"""
One Redis round trip per reactor turn: the scripts asked for in one turn go out together.

Every operation of the ``redis`` backend is a Lua script (the store's writes, the provider
slots' acquire and release). Sent one ``EVAL`` each, a message cost three round trips (a slot
taken, the slot given back, the turns appended with the crisis state's change), and most of the
CPU they cost this process is txredisapi's per-command work (building the command, its reply
Deferred, its reply timeout). :class:`ScriptBatch` keeps the scripts as named Lua functions of
one dispatcher script, collects the calls made during one reactor turn, and sends them as one
``EVALSHA`` (txredisapi falls back to ``EVAL`` once per connection) at the start of the next
turn. Under load, many users' messages share each round trip; a lone message waits one reactor
turn more (microseconds). The measurements are in docs/benchmarks.md, scenario (r).

Inside Redis the batch is one script, so it is atomic as a whole; its operations run in the
order they were asked for, each in ``pcall`` so that one failing operation fails only its own
caller. Scripts read their ``KEYS`` and ``ARGV`` as before (the dispatcher passes them as the
function's arguments); like the scripts themselves, the batch builds key names from arguments,
so the keys must live on one Redis (no Redis Cluster).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from psicoia.chat.ports import StorageUnavailable

# ARGV: one string per operation, its fields joined by NUL: name, number of keys, keys...,
# args... (one argument per operation, not one per field: txredisapi's cost is per argument).
# Reply: per operation {1, result} (result nil/false: None) or {0, error text}.
_DISPATCH = """
local out = {}
for i = 1, #ARGV do
  local fields, start, s = {}, 1, ARGV[i]
  while true do
    local at = string.find(s, '\\0', start, true)
    if not at then fields[#fields + 1] = string.sub(s, start); break end
    fields[#fields + 1] = string.sub(s, start, at - 1)
    start = at + 1
  end
  local name, nk = fields[1], tonumber(fields[2])
  local keys, args = {}, {}
  for j = 1, nk do keys[j] = fields[2 + j] end
  for j = 3 + nk, #fields do args[#args + 1] = fields[j] end
  local ok, result = pcall(ops[name], keys, args)
  if ok then
    out[#out + 1] = {1, result or false}
  else
    out[#out + 1] = {0, type(result) == 'table' and (result.err or 'error') or tostring(result)}
  end
end
return out
"""
_SEPARATOR = "\0"


class ScriptBatch:
    """Named Lua scripts, run together once per reactor turn.

    ``call(command, *args)`` sends one command (``RedisLink.call``: a Deferred that fails with
    StorageUnavailable when Redis cannot answer); ``clock`` schedules the flush;
    ``max_operations`` bounds one round trip's size (more go in further round trips of the same
    flush).
    """

    def __init__(self, call: Callable[..., Deferred], clock: IReactorTime,
                 max_operations: int = 256) -> None:
        self._call = call
        self._clock = clock
        self.max_operations = max_operations
        self._bodies: dict[str, str] = {}
        self._script = ""
        self._chunks: list[tuple[list, list[Deferred]]] = []  # (ARGV, callers) each
        self._flush: Any = None
        self.round_trips = 0  # sent so far (tests and the bench read it)

    def define(self, name: str, body: str) -> None:
        """Make ``body`` (a Lua script reading ``KEYS`` and ``ARGV``) callable as ``name``."""
        if self._bodies.get(name) != body:
            self._bodies[name] = body
            functions = "".join(f"ops[{n!r}] = function(KEYS, ARGV)\n{b}\nend\n"
                                for n, b in self._bodies.items())
            self._script = "local ops = {}\n" + functions + _DISPATCH

    def run(self, name: str, keys: list, args: list) -> Deferred:
        """Deferred[the script's reply] (Lua nil or false: None); fails with
        StorageUnavailable when Redis cannot answer or the script raised.

        ``keys`` and ``args`` are strings or numbers without a NUL character (ValueError
        otherwise: the fields of one operation travel NUL-separated). KeyError for a name
        never defined."""
        if name not in self._bodies:
            raise KeyError(f"no Redis script named {name!r}")
        packed = _SEPARATOR.join((name, str(len(keys)), *map(str, keys), *map(str, args)))
        if packed.count(_SEPARATOR) != 1 + len(keys) + len(args):
            raise ValueError(f"a key or argument of Redis script {name!r} contains NUL")
        if not self._chunks or len(self._chunks[-1][1]) >= self.max_operations:
            self._chunks.append(([], []))
        argv, waiting = self._chunks[-1]
        argv.append(packed)
        result: Deferred = Deferred()
        waiting.append(result)
        if self._flush is None:
            self._flush = self._clock.callLater(0, self.flush)
        return result

    def flush(self) -> None:
        """Send what was asked for (the scheduled call does it; tests may call it)."""
        if self._flush is not None and self._flush.active():
            self._flush.cancel()
        self._flush = None
        chunks, self._chunks = self._chunks, []
        for argv, waiting in chunks:
            self.round_trips += 1
            sent = self._call("eval", self._script, [], argv)
            sent.addCallbacks(self._answered, self._failed, callbackArgs=(waiting,),
                              errbackArgs=(waiting,))

    @staticmethod
    def _answered(replies: list, waiting: list[Deferred]) -> None:
        for result, (ok, value) in zip(waiting, replies):
            if ok == 1:
                result.callback(value)
            else:
                result.errback(StorageUnavailable(f"redis script: {value}"))
        for result in waiting[len(replies):]:  # never expected; no caller may hang on it
            result.errback(StorageUnavailable("redis script: no reply for this operation"))

    @staticmethod
    def _failed(failure, waiting: list[Deferred]) -> None:
        for result in waiting:
            result.errback(failure.value if failure.check(StorageUnavailable)
                           else StorageUnavailable(str(failure.value)))
