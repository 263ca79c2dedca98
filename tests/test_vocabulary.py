"""The one vocabulary: kinds, replies, and folding a reply into one line (whole or streamed)."""

from __future__ import annotations

import random

import pytest

from psicoia.chat.vocabulary import Kind, LineFolder, fold_lines

SAMPLES = [
    "Hola.\nTe escucho.\n\n  ¿Qué pasó?  ",
    "\n\n  empieza con saltos\r\ny sigue\ttabulado  \n",
    "una sola línea",
    "líneas\u2028raras\x0bde\x0cunicode\x85y más",
    "espacios   internos  se  quedan\n fin",
    "",
    "   \n \n  ",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_folding_in_pieces_gives_the_same_line_for_any_split(text):
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randint(0, 6))))
        pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
        folder = LineFolder()
        shown = "".join(folder.feed(piece) for piece in pieces)
        assert shown == folder.shown == fold_lines(text)


def test_what_is_shown_is_never_taken_back():
    folder = LineFolder()
    assert folder.feed("Hola  ") == "Hola"
    assert folder.feed("\n") == ""
    assert folder.feed("  mundo") == " mundo"


def test_kinds_are_strings_for_json_logs_and_labels():
    assert Kind.ANSWERED == "answered" and f"{Kind.TAKEN_OVER}" == "taken_over"
