"""
Provider health seen by every instance on Redis (:class:`~psicoia.chat.ports.ISharedHealth`).

A report is kept in ``psicoia:health:<kind>`` (the epoch second until which no call of that
kind should go out, expiring then) by a script that keeps the later of two reports, and is
announced on ``psicoia:health``; every instance caches what it hears, and re-reads both keys
every ``refresh_seconds`` (two commands; a missed announcement costs at most that long).
Answers are synchronous, from the cache; while Redis is down this instance's own reports still
count here.

The circuit breaker (``psicoia.provider.breaker``) reports ``("breaker", until)`` when it opens
and clears it when its probe call succeeds; it treats ``blocked_until("breaker") > now`` as
open, and once half open it sends a probe only if it wins ``psicoia:health:breaker:probe``
(``SET NX`` with an expiry): one probe for the whole service. The pacer (``psicoia.provider.pacing``) reports the reset time of a budget the provider
says is spent, and the end of a ``Retry-After`` that failed a call (through the breaker), and
waits for ``blocked_until("pacing")``. Reports are written only when they move the time later
than this instance already knows (transitions, not messages); reading is a dictionary lookup.

Times are epoch seconds on each instance's clock: instances on different machines need their
clocks in sync (NTP) to within a small part of a cooldown.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from zope.interface import implementer

from psicoia.chat.ports import ISharedHealth, StorageUnavailable
from psicoia.storage.health import KINDS, LocalHealth
from psicoia.storage.redis_bus import HEALTH
from psicoia.storage.redis_link import RedisLink

_KEY = "psicoia:health:"

# KEYS: the kind's key, its probe claim. ARGV: channel, kind.
_CLEAR = """
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' 0')
return 1
"""

# KEYS: the kind's key. ARGV: until (epoch s), ttl (ms), channel, kind.
_REPORT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= current then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. ARGV[1])
return 1
"""


@implementer(ISharedHealth)
class RedisHealth:
    """Reports go to Redis and to every instance; answers come from the local cache."""

    def __init__(self, link: RedisLink, clock: IReactorTime,
                 refresh_seconds: float = 5.0) -> None:
        self.link = link
        self.clock = clock
        self.cache = LocalHealth()
        self._clears = 0  # a read sent before a clear must not bring the cleared report back
        self._refresh = LoopingCall(self.refresh)
        self._refresh.clock = clock
        self._refresh.start(refresh_seconds, now=False)

    def report(self, kind: str, until: float) -> None:
        if until <= self.cache.blocked_until(kind):
            return  # known already (ours or heard): nothing to tell the others
        self.cache.report(kind, until)
        ttl_ms = max(1, int((until - self.clock.seconds()) * 1000))
        sent = self.link.call("eval", _REPORT, [_KEY + kind], [repr(float(until)), ttl_ms,
                                                                HEALTH, kind])
        sent.addErrback(lambda failure: failure.trap(StorageUnavailable))

    def clear(self, kind: str) -> None:
        self._clears += 1
        self.cache.clear(kind)
        sent = self.link.call("eval", _CLEAR, [_KEY + kind, _KEY + kind + ":probe"],
                              [HEALTH, kind])
        sent.addErrback(lambda failure: failure.trap(StorageUnavailable))

    def claim_probe(self, kind: str, seconds: float) -> Deferred:
        """One ``SET NX PX`` (only when a breaker is half open, never per message); while Redis
        cannot answer, this instance decides alone (True)."""
        # txredisapi's set(key, value, expire, pexpire, only_if_not_exists): "OK" or None.
        claimed = self.link.call("set", _KEY + kind + ":probe", self.link.instance, None,
                                 max(1, int(seconds * 1000)), True)
        claimed.addCallback(lambda reply: reply is not None)
        claimed.addErrback(lambda failure: failure.trap(StorageUnavailable) and True)
        return claimed

    def blocked_until(self, kind: str) -> float:
        return self.cache.blocked_until(kind)

    def heard(self, message: str) -> None:
        """An announcement on ``psicoia:health``: ``"<kind> <until>"`` (``"<kind> 0"``: cleared)."""
        kind, _, until = message.partition(" ")
        if kind not in KINDS:
            return
        try:
            seconds = float(until)
        except ValueError:
            return
        if seconds == 0:
            self._clears += 1
            self.cache.clear(kind)
        else:
            self.cache.report(kind, seconds)

    def refresh(self) -> Any:
        if not self.link.up:
            return None
        read = self.link.call("mget", [_KEY + kind for kind in KINDS])
        clears = self._clears

        def got(values: list) -> None:
            if clears != self._clears:
                return  # cleared meanwhile: these values may be older than the clear
            for kind, value in zip(KINDS, values):
                if value is not None:
                    self.cache.report(kind, float(value))

        read.addCallbacks(got, lambda failure: failure.trap(StorageUnavailable))
        return read

    def stop(self) -> None:
        if self._refresh.running:
            self._refresh.stop()
