"""
Issue 16 item 2 in memory (StringTransport, task.Clock): how one TCP connection is held back so
that it cannot take the reactor or the server's memory. The real-socket versions of these
promises are in tests/test_abuse_flood.py.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IPushProducer
from twisted.internet.testing import StringTransport

from psicoia import texts
from psicoia.chat.session import FLOOD_FACTOR
from psicoia.transports.backlog import (
    CLOSE_GRACE_SECONDS,
    FEED_BYTES,
    LINES_HELD,
    LINES_PER_TURN,
)
from tests.test_protocol_tcp import Harness

RAISED = {"rate_max_messages": 1_000_000, "rate_window_seconds": 1}


def test_lines_answered_at_once_are_handed_on_a_reactor_turn_at_a_time():
    # Offline: the companion answers each line at once, so nothing but the per-turn budget
    # stops one read of a flood from being handled in a single reactor turn.
    harness = Harness(online=False, limits=RAISED)
    client = harness.connect()
    lines = 10 * LINES_PER_TURN + 5
    client.send(b"".join(b"linea %d\n" % n for n in range(lines)))
    assert len(client.replies) == LINES_PER_TURN
    assert client.transport.producerState == "paused"  # more than LINES_HELD lines wait
    # The rest waits for a call at 0 s: the reactor serves other connections first.
    assert [call.getTime() for call in harness.clock.getDelayedCalls()
            if call.func == client.protocol._new_turn] == [harness.clock.seconds()]
    harness.clock.advance(0)  # Clock runs every turn that is due, one after the other
    assert client.replies[-1] and len(client.replies) == lines  # every line answered once
    assert client.transport.producerState == "producing"


def test_one_big_read_is_split_into_lines_a_slice_at_a_time():
    # The line editor splits 64 KiB of "a\n" (32,768 lines) in a whole turn's worth of time:
    # it gets the read FEED_BYTES at a time, as the lines before are handed on.
    harness = Harness(online=False, limits=RAISED)
    client = harness.connect()
    lines = 4096
    client.send(b"a\n" * lines)
    # The first turn split one slice (FEED_BYTES // 2 lines of "a\n") and answered a turn's
    # worth of it; the rest of the read is still bytes.
    split = len(client.replies) + len(client.protocol._lines)
    assert split <= FEED_BYTES // 2 + LINES_PER_TURN
    harness.clock.advance(0)
    assert len(client.replies) == lines


def test_reading_stops_while_many_finished_lines_wait_and_resumes_when_they_are_handed_on():
    harness = Harness(online=False, limits=RAISED)
    client = harness.connect()
    client.send(b"x\n" * (LINES_HELD + 1 + LINES_PER_TURN))
    assert client.transport.producerState == "paused"
    while len(client.protocol._lines) > LINES_HELD // 2:
        harness.clock.advance(0)
    assert client.transport.producerState == "producing"


def test_the_connection_is_its_transports_streaming_producer():
    harness = Harness()
    client = harness.connect()
    assert client.transport.producer is client.protocol
    assert client.transport.streaming is True
    assert IPushProducer.providedBy(client.protocol)


def test_a_client_that_does_not_read_gets_no_new_reply_until_its_buffer_drains():
    harness = Harness(online=False, limits=RAISED)
    client = harness.connect()
    client.say("uno")
    assert len(client.replies) == 1
    client.protocol.pauseProducing()  # what the transport does past its high-water mark
    client.send(b"dos\ntres\n")
    assert len(client.replies) == 1  # nothing new is made while it does not read
    client.protocol.resumeProducing()  # the buffer drained
    assert len(client.replies) == 3  # answered later, never dropped


def test_a_reply_already_under_way_is_still_written_while_the_output_is_full():
    harness = Harness()
    client = harness.connect()
    client.say("uno")
    client.protocol.pauseProducing()
    harness.provider.answer_all()
    assert len(client.replies) == 1


def test_a_closed_client_that_never_reads_is_cut_off_after_the_grace():
    harness = Harness(online=False, limits={"rate_max_messages": 1})
    address = IPv4Address("TCP", "10.0.0.9", 40000)
    protocol = harness.factory.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    protocol.dataReceived(b"a\n" * (1 + FLOOD_FACTOR + 5))  # the flood sanction closes it
    assert texts.FLOODING.encode("utf-8") in transport.value()
    assert transport.disconnecting and not transport.disconnected
    assert transport.producer is None  # unregistered: the close is not held by a producer
    harness.clock.advance(CLOSE_GRACE_SECONDS - 0.1)
    assert not transport.disconnected
    harness.clock.advance(0.2)
    assert transport.disconnected  # aborted: its buffer is not kept until the idle timeout
