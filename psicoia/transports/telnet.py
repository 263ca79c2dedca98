"""
Strip telnet negotiation (IAC sequences) from a byte stream, across read boundaries.

Telnet clients open with option negotiation (``IAC DO/WILL ...``) and may send subnegotiation
(``IAC SB ... IAC SE``); none of it is part of what the user typed, so none of it may reach a
message. We negotiate nothing back: a client that gets no answer keeps its defaults.
"""

IAC = 0xFF
SB = 0xFA
SE = 0xF0
WILL, WONT, DO, DONT = 0xFB, 0xFC, 0xFD, 0xFE

_DATA, _COMMAND, _OPTION, _SUB, _SUB_IAC = range(5)


class TelnetFilter:
    def __init__(self) -> None:
        self._state = _DATA

    def feed(self, data: bytes) -> bytes:
        if self._state == _DATA and IAC not in data:
            return data
        out = bytearray()
        state = self._state
        for byte in data:
            if state == _DATA:
                if byte == IAC:
                    state = _COMMAND
                else:
                    out.append(byte)
            elif state == _COMMAND:
                if byte in (WILL, WONT, DO, DONT):
                    state = _OPTION
                elif byte == SB:
                    state = _SUB
                else:
                    # IAC IAC is a literal 0xFF (never valid UTF-8 text); other commands are
                    # two bytes (NOP, AYT, GA, ...). Drop both kinds.
                    state = _DATA
            elif state == _OPTION:
                state = _DATA
            elif state == _SUB:
                if byte == IAC:
                    state = _SUB_IAC
            elif state == _SUB_IAC:
                state = _DATA if byte == SE else _SUB
        self._state = state
        return bytes(out)
