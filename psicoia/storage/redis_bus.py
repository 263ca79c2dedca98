"""
Messages between instances over Redis pub/sub: one subscriber connection per instance.

Channels and what they carry (all plain strings, never message text):

- ``psicoia:claims``: ``"<instance> <conversation id>"``, published by the resume script
  (:mod:`psicoia.storage.redis`) when a conversation is resumed. Every other instance that
  carries that conversation on a connection evicts it (``on_claimed(conversation_id)``: the
  core's ``SessionManager.evict``): the user is told and that connection closes.
- ``psicoia:slots``: published when provider slots were granted to waiting tickets, so the
  instances that wait check at once instead of at their next poll
  (:mod:`psicoia.storage.redis_slots`).
- ``psicoia:health``: the shared provider health changed (:mod:`psicoia.storage.redis_health`).
- ``psicoia:wrong``: a wrong ``/retomar`` code from an address (its tag), counted by every
  instance (:mod:`psicoia.storage.redis_throttle`).

A message published while this instance is disconnected is lost: claims then rely on the
next message of the old connection failing nothing (the stored history is shared), slots on
the poll, health on its periodic read, a wrong code is counted only where it was typed.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from psicoia.storage.redis_link import subscriber

log = Logger(namespace="psicoia.storage")

CLAIMS = "psicoia:claims"
SLOTS = "psicoia:slots"
HEALTH = "psicoia:health"
WRONG = "psicoia:wrong"


class RedisBus:
    """Routes messages of the four channels to handlers set with :meth:`on`.

    ``instance`` is this process's id (``RedisLink.instance``): its own claims are ignored
    (the local take-over already happened in the core).
    """

    def __init__(self, url: str, instance: str, connection: Any = None) -> None:
        self.instance = instance
        self.handlers: dict[str, Callable[[str], None]] = {}
        self.received = 0
        self.connection = connection or subscriber(url, self._message, [CLAIMS, SLOTS, HEALTH, WRONG])

    def on(self, channel: str, handler: Callable[[str], None]) -> None:
        """``handler(message)`` for each message on ``channel`` (one handler per channel)."""
        self.handlers[channel] = handler

    def on_claimed(self, evict: Callable[[str], None]) -> None:
        """``evict(conversation_id)`` when another instance resumed that conversation."""
        def claimed(message: str) -> None:
            owner, _, conversation_id = message.partition(" ")
            if owner != self.instance and conversation_id:
                evict(conversation_id)

        self.on(CLAIMS, claimed)

    def _message(self, channel: Any, message: Any) -> None:
        channel = channel.decode() if isinstance(channel, bytes) else channel
        message = message.decode() if isinstance(message, bytes) else message
        handler = self.handlers.get(channel)
        if handler is None:
            return
        self.received += 1
        try:
            handler(message)
        except Exception:
            log.failure("redis bus: handler for {channel} failed", channel=channel)

    def close(self) -> Deferred:
        return self.connection.disconnect()
