"""
Issue 16 item 2 for the WebSocket, in memory (StringTransport, task.Clock): a socket flooding
frames cannot take the reactor, and one whose client does not read gets no new reply until it
does (psicoia/transports/inflow.py). The TCP versions are in tests/test_abuse_turns.py, the
real-socket ones in tests/test_abuse_websocket_sockets.py.
"""

from __future__ import annotations

import struct

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from zope.interface.verify import verifyObject

from psicoia.ops.connections import ConnectionRegistry
from psicoia.ops.metrics import Metrics
from psicoia.transports.backlog import FEED_BYTES, LINES_HELD, LINES_PER_TURN
from psicoia.transports.chat_socket import chat_socket_factory
from psicoia.transports.origins import OriginPolicy
from tests.helpers import make_config, make_manager
from tests.provider_stub import ControlledProvider
from tests.wsclient import GREETING_LINES

RAISED = {"rate_max_messages": 1_000_000, "rate_window_seconds": 1}
HANDSHAKE = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8765\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n\r\n")
PING, PONG = 0x9, 0xA


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame (a zero mask: the payload as is), payload under 126 bytes."""
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of every whole unmasked frame the server wrote after its handshake."""
    data = data.split(b"\r\n\r\n", 1)[1]
    frames = []
    while len(data) >= 2:
        opcode, length, at = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            length, at = struct.unpack("!H", data[2:4])[0], 4
        elif length == 127:
            length, at = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < at + length:
            break
        frames.append((opcode, data[at:at + length]))
        data = data[at + length:]
    return frames


class Socket:
    """One WebSocket of the real chat socket factory on a StringTransport, after its handshake."""

    def __init__(self, online: bool = False, **limits) -> None:
        self.clock = Clock()
        self.provider = ControlledProvider(online=online)
        config = make_config(limits=limits or RAISED)
        manager = make_manager(config, self.provider, self.clock, system_prompt="s",
                               instruments=Metrics())
        self.factory = chat_socket_factory(manager, ConnectionRegistry(10, 10), self.clock,
                                           OriginPolicy(), ping_interval=30, ping_timeout=10,
                                           timers_clock=self.clock)
        address = IPv4Address("TCP", "10.0.0.1", 40000)
        self.protocol = self.factory.buildProtocol(address)
        self.transport = StringTransport(peerAddress=address,
                                         hostAddress=IPv4Address("TCP", "127.0.0.1", 8765))
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(HANDSHAKE)
        assert len(self.texts) == GREETING_LINES

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def frames(self, opcode: int) -> list[bytes]:
        return [payload for kind, payload in server_frames(self.transport.value())
                if kind == opcode]

    @property
    def texts(self) -> list[str]:
        return [payload.decode("utf-8") for payload in self.frames(0x1)]

    @property
    def replies(self) -> list[str]:
        return self.texts[GREETING_LINES:]


def test_messages_answered_at_once_are_handed_on_a_reactor_turn_at_a_time():
    # Offline: the companion answers each message at once, so only the per-turn budget keeps
    # one read of a flood from being answered in a single reactor turn.
    socket = Socket()
    messages = 10 * LINES_PER_TURN + 5
    socket.send(b"".join(client_frame(b"m%d" % n) for n in range(messages)))
    assert len(socket.replies) == LINES_PER_TURN
    assert socket.transport.producerState == "paused"  # more than LINES_HELD wait
    socket.clock.advance(0)  # the next turns (a call at 0 s each), one after the other
    assert len(socket.replies) == messages  # each answered once
    assert socket.transport.producerState == "producing"


def test_one_read_of_tiny_frames_is_parsed_a_slice_at_a_time():
    # 64 KiB of one-byte frames is 9,362 messages; Autobahn alone parses them all in one go.
    socket = Socket()
    frame = client_frame(b"a")
    messages = 65536 // len(frame)
    socket.send(frame * messages)
    parsed = len(socket.replies) + len(socket.protocol.inflow.inbox)
    assert parsed <= LINES_HELD + FEED_BYTES // len(frame), parsed
    assert socket.protocol.inflow.unfed  # the rest is still bytes, and reading is held
    assert socket.transport.producerState == "paused"
    socket.clock.advance(0)
    assert len(socket.replies) == messages
    assert socket.transport.producerState == "producing"


def test_a_read_of_pings_is_parsed_a_slice_at_a_time_and_each_gets_its_pong():
    socket = Socket()
    frame = client_frame(b"p", PING)
    pings = 65536 // len(frame)
    socket.send(frame * pings)
    assert len(socket.frames(PONG)) <= LINES_HELD + FEED_BYTES // len(frame)
    assert socket.transport.producerState == "paused"
    socket.clock.advance(0)
    assert len(socket.frames(PONG)) == pings
    assert socket.transport.producerState == "producing"


def test_every_message_is_answered_once_in_order_across_slices_reads_and_turns():
    socket = Socket(online=True)
    texts = [f"m{n:03d}" for n in range(300)]  # 3,000 bytes: three slices
    socket.send(b"".join(client_frame(text.encode()) for text in texts[:-1]))
    socket.send(client_frame(texts[-1].encode()))  # arrives while bytes of the first wait
    for _ in range(len(texts)):
        socket.clock.advance(0)
        socket.provider.answer_all()
    assert socket.replies == [f"re: {text}" for text in texts]


def test_the_socket_is_its_transports_streaming_producer():
    socket = Socket()
    assert socket.transport.producer is socket.protocol.inflow
    assert socket.transport.streaming is True
    assert verifyObject(IPushProducer, socket.transport.producer)


def test_a_client_that_does_not_read_gets_no_new_reply_until_its_buffer_drains():
    socket = Socket()
    socket.send(client_frame(b"uno"))
    assert len(socket.replies) == 1
    socket.transport.producer.pauseProducing()  # what the transport does past its high-water mark
    socket.send(client_frame(b"dos") + client_frame(b"tres"))
    assert len(socket.replies) == 1  # nothing new is made while it does not read
    socket.transport.producer.resumeProducing()  # the buffer drained
    assert len(socket.replies) == 3  # answered later, in order, never dropped


def test_a_reply_already_under_way_is_still_written_while_the_output_is_full():
    socket = Socket(online=True)
    socket.send(client_frame(b"uno"))
    socket.transport.producer.pauseProducing()
    socket.provider.answer_all()
    assert socket.replies == ["re: uno"]


def test_pings_and_pongs_flow_while_the_output_is_full_and_messages_wait():
    socket = Socket()
    socket.transport.producer.pauseProducing()
    socket.send(b"".join(client_frame(b"m%d" % n) for n in range(20)))
    socket.send(client_frame(b"hola?", PING))
    assert socket.frames(PONG) == [b"hola?"]  # answered although 20 messages wait
    socket.clock.advance(30)
    [ping] = socket.frames(PING)  # the server's keepalive
    socket.send(client_frame(ping, PONG))
    socket.clock.advance(15)  # past the ping timeout: the pong was read
    assert not socket.transport.disconnecting
    socket.transport.producer.resumeProducing()
    assert len(socket.replies) == 20


def test_a_closing_socket_unregisters_so_that_the_close_is_not_held():
    socket = Socket()
    socket.send(client_frame(b"salir"))
    socket.clock.advance(5)  # the close handshake timeout: the client never answered
    assert socket.transport.producer is None
    assert socket.transport.disconnecting
