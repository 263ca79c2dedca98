"""
Telnet option negotiation on the TCP listener, on :class:`twisted.conch.telnet.Telnet`.

The same port serves ``nc`` users and telnet clients, so the rule is: **the server never starts
a negotiation; it only answers one.** A client that never sends IAC (``nc``, ``socat``, scripts)
never receives a negotiation byte. A telnet client that asks gets standard answers:

* ``DO ECHO`` -> ``WILL ECHO``: the server echoes what the user types (with its line editing,
  :mod:`psicoia.transports.lineedit`), and the client stops echoing locally. This is what
  ``mode character`` in BSD/netkit telnet asks for, and Windows telnet and PuTTY at connect.
* ``DO SUPPRESS-GO-AHEAD`` -> ``WILL``, ``WILL SUPPRESS-GO-AHEAD`` -> ``DO``: we never send GA.
* ``WILL LINEMODE`` -> ``DONT LINEMODE`` (RFC 1184 is declined): the client then keeps the
  classic modes: it edits and echoes a whole line locally, or, once the server echoes, sends
  each key and the server edits (character mode).
* anything else (NAWS, TTYPE, NEW-ENVIRON, ...) is refused, and subnegotiations are ignored.

Commands (NOP, AYT, GA, ...) and IAC IAC (a literal 0xFF, never valid UTF-8) never reach a
message. Line ends are left to the line editor: Conch's own CR handling waits for the byte
after a CR, which would hold back the line of a client that ends lines with a bare CR.
"""

from __future__ import annotations

from typing import Callable

from twisted.conch.telnet import ECHO, IAC, SGA, Telnet
from twisted.logger import Logger

from psicoia.ops.internals import telnet_parser_idle, telnet_reset_parser, telnet_take_held_cr

__all__ = ["IAC", "TelnetCodec"]

_ACCEPT_LOCAL = {ECHO, SGA}    # we WILL these when asked (DO)
_ACCEPT_REMOTE = {SGA}         # the client may (WILL) these


class TelnetCodec(Telnet):
    """Parses telnet commands out of one connection's bytes; hands on the rest.

    ``on_data(bytes)`` gets the user's bytes, in order. ``echoing`` is true while the server
    has agreed to echo (``WILL ECHO`` in force).

    Conch offers no hook for the two cases handled in :meth:`dataReceived` (a held CR, a
    refused byte): psicoia.ops.internals reads and resets its parser state.
    """

    log = Logger()

    def __init__(self, on_data: Callable[[bytes], None]) -> None:
        super().__init__()
        self.on_data = on_data
        self.echoing = False

    def dataReceived(self, data: bytes) -> None:
        if telnet_parser_idle(self) and IAC not in data:
            self.on_data(data)  # the common case, and all of nc's traffic: no parsing
            return
        # Byte by byte, so that a byte Conch refuses (IAC followed by an unknown command
        # raises ValueError) costs only itself, and so a CR is never held back (see above).
        for index in range(len(data)):
            byte = data[index:index + 1]
            try:
                super().dataReceived(byte)
            except ValueError:
                telnet_reset_parser(self)  # "IAC x" with an unknown x: both bytes dropped
            if telnet_take_held_cr(self):
                self.on_data(b"\r")

    def applicationDataReceived(self, data: bytes) -> None:
        self.on_data(data)

    def enableLocal(self, option: bytes) -> bool:
        if option == ECHO:
            self.echoing = True
        return option in _ACCEPT_LOCAL

    def disableLocal(self, option: bytes) -> None:
        if option == ECHO:
            self.echoing = False

    def enableRemote(self, option: bytes) -> bool:
        return option in _ACCEPT_REMOTE  # LINEMODE among the refused

    def disableRemote(self, option: bytes) -> None:
        pass

    def unhandledCommand(self, command, argument) -> None:
        pass

    def unhandledSubnegotiation(self, command, data) -> None:
        pass
