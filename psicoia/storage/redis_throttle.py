"""
The wrong-code throttle for ``/retomar`` counted across every instance on Redis.

Behind a load balancer one address's connections land on different instances; counted per
instance, N instances would allow N times the wrong codes. :class:`SharedWrongCodes` is the
core's :class:`~psicoia.chat.manager.WrongCodes` (the same limits, the same synchronous
``check``), and each wrong code recorded here is also announced on ``psicoia:wrong``
(:mod:`~psicoia.storage.redis_bus`) as ``"<instance> <tag>"``; every other instance records
it too. A ``/retomar`` therefore costs no extra round trip, and only a wrong one is published
(one command). The tag is a SHA-256 of the address, cut to 16 hex digits: addresses are not sent
in the clear (a published message is not stored by Redis either).

While Redis is unreachable each instance counts on its own (the announcement is dropped), and
an announcement published while an instance's subscriber is reconnecting is lost to it: the
throttle is then per instance again, as it was.
"""

from __future__ import annotations

import hashlib

from twisted.internet.interfaces import IReactorTime

from psicoia.chat.manager import WrongCodes
from psicoia.chat.ports import StorageUnavailable
from psicoia.storage.redis_bus import WRONG
from psicoia.storage.redis_link import RedisLink


def tag(address: str) -> str:
    """What the instances call an address between them (16 hex digits)."""
    return hashlib.sha256(address.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class SharedWrongCodes(WrongCodes):
    """:class:`WrongCodes` whose wrong codes every instance on ``link``'s Redis counts."""

    def __init__(self, clock: IReactorTime, link: RedisLink) -> None:
        super().__init__(clock)
        self.link = link

    def check(self, address: str) -> float:
        return super().check(tag(address))

    def record(self, address: str) -> None:
        key = tag(address)
        super().record(key)
        if self.link.up:
            sent = self.link.call("publish", WRONG, f"{self.link.instance} {key}")
            sent.addErrback(lambda failure: failure.trap(StorageUnavailable))

    def heard(self, message: str) -> None:
        """An announcement on ``psicoia:wrong`` (this instance's own are skipped)."""
        owner, _, key = message.partition(" ")
        if owner != self.link.instance and len(key) == 16:
            super().record(key)


__all__ = ["WRONG", "SharedWrongCodes", "tag"]
