"""IdleWatch: per-connection idle deadlines on one timer, at the same instants as
TimeoutMixin's per-connection timers."""

from __future__ import annotations

from twisted.internet.task import Clock

from psicoia.transports.idle import IdleWatch


class Conn:
    def __init__(self, name: str, log: list) -> None:
        self.name = name
        self.log = log

    def timeoutConnection(self) -> None:
        self.log.append(self.name)


def test_each_connection_times_out_its_own_timeout_after_its_last_activity():
    clock, log = Clock(), []
    watch = IdleWatch(clock, 60)
    a, b, c = (Conn(name, log) for name in "abc")
    watch.start(a)
    clock.advance(10)
    watch.start(b)
    watch.start(c)
    clock.advance(40)
    watch.touch(a)  # a's deadline: 110
    assert len(clock.getDelayedCalls()) == 1, "one timer for every connection"
    clock.advance(19.9)
    assert log == []
    clock.advance(0.1)  # 70: b and c, in the order they started
    assert log == ["b", "c"]
    clock.advance(39.9)
    assert log == ["b", "c"]
    clock.advance(0.1)  # 110
    assert log == ["b", "c", "a"]
    assert clock.getDelayedCalls() == [] and len(watch) == 0


def test_touch_ignores_unwatched_and_forget_stops_the_timer_when_nothing_is_left():
    clock, log = Clock(), []
    watch = IdleWatch(clock, 5)
    a, b = Conn("a", log), Conn("b", log)
    watch.touch(a)  # not started: nothing watched, no timer
    assert clock.getDelayedCalls() == [] and len(watch) == 0
    watch.start(a)
    watch.start(b)
    watch.forget(a)
    watch.forget(a)  # idempotent
    assert len(clock.getDelayedCalls()) == 1
    watch.forget(b)
    assert clock.getDelayedCalls() == []
    clock.advance(10)
    assert log == []


def test_a_timeout_that_raises_does_not_stop_the_others():
    clock, log = Clock(), []
    watch = IdleWatch(clock, 1)

    class Broken(Conn):
        def timeoutConnection(self) -> None:
            raise RuntimeError("boom")

    watch.start(Broken("x", log))
    clock.advance(0.5)
    watch.start(Conn("y", log))
    try:
        clock.advance(0.5)
    except RuntimeError:
        pass
    clock.advance(0.5)
    assert log == ["y"]
