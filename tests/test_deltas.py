"""
psicoia/chat/deltas.py: streamed text reaches the user at once after a pause, and in a few
writes a second when it comes fast; nothing is lost, nothing comes after finish().
"""

from __future__ import annotations

from twisted.internet.task import Clock

from psicoia.chat.deltas import INTERVAL_SECONDS, DeltaRelay
from psicoia.chat.vocabulary import fold_lines


def relay():
    clock = Clock()
    shown: list[str] = []
    return clock, shown, DeltaRelay(clock, shown.append)


def test_the_first_words_and_words_after_a_pause_are_shown_at_once():
    clock, shown, deltas = relay()
    deltas.feed("Hola,")
    assert shown == ["Hola,"]
    clock.advance(INTERVAL_SECONDS)
    deltas.feed(" te escucho")
    assert shown == ["Hola,", " te escucho"]


def test_pieces_that_come_fast_are_shown_together_within_the_interval():
    clock, shown, deltas = relay()
    deltas.feed("Hola")
    for piece in (",", " te", " escucho"):
        clock.advance(0.01)
        deltas.feed(piece)
    assert shown == ["Hola"]
    clock.advance(INTERVAL_SECONDS - 0.03)
    assert shown == ["Hola", ", te escucho"]
    assert not clock.getDelayedCalls()


def test_finish_shows_what_is_held_and_nothing_comes_after_it():
    clock, shown, deltas = relay()
    deltas.feed("Hola")
    deltas.feed(" vos\n")
    deltas.feed("  ¿qué tal?")
    deltas.finish()
    assert "".join(shown) == fold_lines("Hola vos\n  ¿qué tal?")
    assert not clock.getDelayedCalls()
    deltas.feed(" más")
    deltas.finish()
    clock.advance(1)
    assert "".join(shown) == "Hola vos ¿qué tal?"


def test_the_joined_text_is_the_folded_reply_for_any_timing():
    text = "Uno dos\r\n tres  cuatro\n\ncinco "
    for step in (0.0, 0.01, 0.03, 0.06):
        clock, shown, deltas = relay()
        for char in text:
            deltas.feed(char)
            clock.advance(step)
        deltas.finish()
        assert "".join(shown) == fold_lines(text)
