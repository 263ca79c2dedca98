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

__all__ = ["IAC", "TelnetCodec"]

_ACCEPT_LOCAL = {ECHO, SGA}    # we WILL these when asked (DO)
_ACCEPT_REMOTE = {SGA}         # the client may (WILL) these


class TelnetCodec(Telnet):
    """Parses telnet commands out of one connection's bytes; hands on the rest.

    ``on_data(bytes)`` gets the user's bytes, in order. ``echoing`` is true while the server
    has agreed to echo (``WILL ECHO`` in force).

    Checked against Twisted 26.10: the parser's ``state`` attribute ("data", "newline", ...) is
    read and reset here because Conch offers no hook for the two cases handled below.
    """

    log = Logger()

    def __init__(self, on_data: Callable[[bytes], None]) -> None:
        super().__init__()
        self.on_data = on_data
        self.echoing = False

    def dataReceived(self, data: bytes) -> None:
        if self.state == "data" and IAC not in data:
            self.on_data(data)  # the common case, and all of nc's traffic: no parsing
            return
        # Byte by byte, so that a byte Conch refuses (IAC followed by an unknown command
        # raises ValueError) costs only itself, and so a CR is never held back (see above).
        for index in range(len(data)):
            byte = data[index:index + 1]
            try:
                super().dataReceived(byte)
            except ValueError:
                self.state = "data"  # "IAC x" with an unknown x: both bytes dropped
            if self.state == "newline":
                self.state = "data"
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
