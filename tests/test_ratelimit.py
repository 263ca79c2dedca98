"""The per-user sliding-window rate limiter, on a task.Clock."""

from __future__ import annotations

from twisted.internet.task import Clock

from psicoia.chat.ratelimit import SlidingWindowLimiter


def test_allows_max_events_per_window_then_says_how_long_to_wait():
    clock = Clock()
    limiter = SlidingWindowLimiter(clock, 3, 10)
    assert [limiter.check("a") for _ in range(3)] == [0, 0, 0]
    clock.advance(4)
    assert limiter.check("a") == 6


def test_the_window_slides_event_by_event():
    clock = Clock()
    limiter = SlidingWindowLimiter(clock, 2, 10)
    limiter.check("a")          # t=0
    clock.advance(5)
    limiter.check("a")          # t=5
    clock.advance(5)            # t=10: the first event leaves the window
    assert limiter.check("a") == 0
    assert limiter.check("a") == 5  # the t=5 event leaves at t=15


def test_refused_events_are_not_counted():
    clock = Clock()
    limiter = SlidingWindowLimiter(clock, 1, 10)
    limiter.check("a")
    for _ in range(20):
        clock.advance(0.25)
        assert limiter.check("a") > 0
    clock.advance(5)  # t=10
    assert limiter.check("a") == 0


def test_keys_are_independent():
    clock = Clock()
    limiter = SlidingWindowLimiter(clock, 1, 10)
    assert limiter.check("a") == 0
    assert limiter.check("b") == 0
    assert limiter.check("a") > 0


def test_forget_drops_the_state_of_a_key():
    clock = Clock()
    limiter = SlidingWindowLimiter(clock, 1, 10)
    limiter.check("a")
    limiter.forget("a")
    limiter.forget("never-seen")
    assert limiter.check("a") == 0


def test_idle_keys_are_dropped_once_their_events_leave_the_window():
    clock = Clock()
    limiter = SlidingWindowLimiter(clock, 2, 10)
    for n in range(100):
        limiter.check(f"idle-{n}")
    assert len(limiter) == 100
    clock.advance(5)
    limiter.check("active")
    assert len(limiter) == 101, "nothing has left the window yet"
    clock.advance(5.5)  # t=10.5: the idle keys' only events are out of the window
    limiter.check("active")
    assert len(limiter) == 1
    assert limiter.check("active") > 0, "the live key keeps its window: 2 events in 10 s"
    assert limiter.check("idle-1") == 0


def test_a_refused_key_is_kept_while_its_events_are_in_the_window():
    clock = Clock()
    limiter = SlidingWindowLimiter(clock, 1, 10)
    limiter.check("a")
    clock.advance(9)
    assert limiter.check("a") == 1
    clock.advance(0.5)
    limiter.check("b")
    clock.advance(0.6)  # t=10.1: a's event left the window, b's did not
    limiter.check("b")
    assert len(limiter) == 1 and limiter.check("b") > 0
    assert limiter.check("a") == 0
