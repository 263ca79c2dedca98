"""
Keep per-connection objects compact: a CPython detail that costs about 1.4 KiB per connection
when ignored (bench/analysis.md, "Memory per idle connection").

CPython 3.11 keeps an instance's attributes in a compact array laid out by the attribute names
its class has seen (8 bytes per name), and each new instance narrows the room left for names
not seen yet. A name first set once many instances exist (a burst of connections accepted in
one reactor turn, then their first write or first message) cannot join the layout any more,
and each instance that sets it gets a dict of its own instead: about 600 bytes for our TCP
protocol, 830 for Twisted's transport, for as long as the connection lives. So our protocols
set every attribute in ``__init__``, and :func:`share_server_layout` teaches Twisted's TCP
transport class the names it sets late, before any connection exists.
"""

from __future__ import annotations

from twisted.internet.tcp import Server

# What Twisted's TCP server transport (twisted.internet.tcp.Server, checked against Twisted
# 26.10) sets on itself after it is made: at its first write, when a producer registers, when
# paused, when closing.
SERVER_LATE_ATTRIBUTES = ("dataBuffer", "offset", "producer", "streamingProducer",
                          "producerPaused", "disconnecting")


def share_attribute_layout(cls: type, names: tuple) -> None:
    """Make ``names`` part of the attribute layout every instance of ``cls`` made from now on
    shares, by setting them once on a throwaway instance. Harmless where the layout works
    otherwise (other Python versions): it only sets attributes on an object it drops."""
    spare = object.__new__(cls)
    for name in names:
        setattr(spare, name, None)


def share_server_layout() -> None:
    """:func:`share_attribute_layout` for Twisted's TCP transport (every TCP, WebSocket and
    HTTP listener's connections); called by each listener service before it listens
    (psicoia.app.listeners), so it holds whichever listeners are configured."""
    share_attribute_layout(Server, SERVER_LATE_ATTRIBUTES)
