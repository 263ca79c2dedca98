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
