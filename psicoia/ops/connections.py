"""
Connection caps shared by every transport, and the list of who to tell when we shut down.

A connection admitted here counts against ``server.max_connections`` and, per remote address,
``server.max_connections_per_ip``, whichever transport it came through.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional, Protocol

from twisted.internet.defer import Deferred, succeed

from psicoia import texts
from psicoia.ops.instruments import Instruments
from psicoia.ops.observers import Waiters

REFUSALS = {
    "server_full": texts.SERVER_FULL,
    "per_address": texts.TOO_MANY_FROM_ADDRESS,
}


class Connection(Protocol):
    transport_name: str

    def notify_shutdown(self) -> None:
        """Tell the user the service is closing (one notice line)."""

    def disconnect(self) -> None:
        """Close the connection now."""


class ConnectionRegistry:
    def __init__(self, max_total: int, max_per_address: int,
                 instruments: Optional[Instruments] = None) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.instruments = instruments or Instruments()
        self._open: dict[Connection, str] = {}
        self._per_address: Counter[str] = Counter()
        self._empty = Waiters()

    def admit(self, connection: Connection, address: str) -> Optional[str]:
        """Register ``connection``; return a refusal reason (a key of REFUSALS) or None."""
        name = connection.transport_name
        reason = None
        if len(self._open) >= self.max_total:
            reason = "server_full"
        elif self._per_address[address] >= self.max_per_address:
            reason = "per_address"
        if reason:
            self.instruments.connection_refused(name, reason)
            return reason
        self._open[connection] = address
        self._per_address[address] += 1
        self.instruments.connection_opened(name)
        return None

    def release(self, connection: Connection) -> None:
        address = self._open.pop(connection, None)
        if address is None:
            return
        self._per_address[address] -= 1
        if not self._per_address[address]:
            del self._per_address[address]
        self.instruments.connection_closed(connection.transport_name)
        if not self._open:
            self._empty.fire()

    def when_empty(self) -> Deferred:
        """Fires when no connection is open (shutdown waits for the last lines to be sent)."""
        if not self._open:
            return succeed(None)
        return self._empty.wait()

    def __len__(self) -> int:
        return len(self._open)

    def connections(self) -> list[Connection]:
        return list(self._open)
