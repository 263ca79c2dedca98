"""
psicoia/provider/read_ticks.py: paused streams resume together on one timer, each at most
``interval`` seconds after it paused, and one stream's failure does not stall the others.
"""

from __future__ import annotations

from twisted.internet.task import Clock

from psicoia.provider.read_ticks import ReadTicks


def test_streams_that_pause_before_a_tick_resume_together_on_it():
    clock = Clock()
    ticks = ReadTicks(clock, 0.1)
    resumed: list[str] = []
    ticks.pause("a", lambda: resumed.append("a"))
    clock.advance(0.06)
    ticks.pause("b", lambda: resumed.append("b"))  # joins the tick already due
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(0.039)
    assert resumed == []
    clock.advance(0.001)  # 0.1 s after the first pause: both, in the order they paused
    assert resumed == ["a", "b"] and clock.getDelayedCalls() == [] and len(ticks) == 0


def test_a_stream_that_pauses_while_resuming_joins_the_next_tick():
    clock = Clock()
    ticks = ReadTicks(clock, 0.1)
    resumed: list[float] = []

    def resume() -> None:
        resumed.append(clock.seconds())
        if len(resumed) < 3:
            ticks.pause("a", resume)

    ticks.pause("a", resume)
    clock.pump([0.1] * 5)
    assert [round(t, 6) for t in resumed] == [0.1, 0.2, 0.3]
    assert clock.getDelayedCalls() == []


def test_cancel_forgets_a_pause_and_the_last_cancel_stops_the_timer():
    clock = Clock()
    ticks = ReadTicks(clock, 0.1)
    resumed: list[str] = []
    ticks.pause("a", lambda: resumed.append("a"))
    ticks.pause("b", lambda: resumed.append("b"))
    assert ticks.cancel("a") is True
    assert ticks.cancel("a") is False  # not waiting any more
    assert len(clock.getDelayedCalls()) == 1
    assert ticks.cancel("b") is True
    assert clock.getDelayedCalls() == []
    clock.advance(1)
    assert resumed == []


def test_one_streams_error_does_not_stall_the_others():
    clock = Clock()
    ticks = ReadTicks(clock, 0.1)
    resumed: list[str] = []

    def broken() -> None:
        raise RuntimeError("transport gone")

    ticks.pause("a", broken)
    ticks.pause("b", lambda: resumed.append("b"))
    clock.advance(0.1)
    assert resumed == ["b"]


def test_the_streams_of_one_client_pause_on_one_timer():
    """Two streamed bodies sharing the client's ticks: one delayed call for both, and both
    read again on it (StringTransport records pauses)."""
    from twisted.internet.testing import StringTransport

    from psicoia.ops.instruments import Instruments
    from psicoia.provider.reasoning import ReasoningStyle
    from psicoia.provider.streaming import StreamBody, StreamReading
    from tests.fake_provider import sse_event

    clock = Clock()
    ticks = ReadTicks(clock, 0.1)
    transports = []
    for number in (1, 2):
        reading = StreamReading(clock, 5.0, 10 ** 6, ReasoningStyle(known=True),
                                lambda text: None, Instruments(), f"Usuario-{number}:m1",
                                ticks=ticks)
        body = StreamBody(reading, lambda: None)
        transport = StringTransport()
        body.makeConnection(transport)
        body.dataReceived(sse_event('{"choices": [{"delta": {"content": "Hola"}}]}'))
        transports.append(transport)
        clock.advance(0.03)
    assert [t.producerState for t in transports] == ["paused", "paused"]
    # One timer for both pauses (the others are each stream's stall timer, 5 s away).
    assert [round(call.getTime(), 6) for call in clock.getDelayedCalls()
            if call.getTime() < 1] == [0.1]
    clock.advance(0.1 - clock.seconds())
    assert [t.producerState for t in transports] == ["producing", "producing"]
