"""
Keeping reasoning out of the reply (psicoia.provider.reasoning), whole and in pieces.
"""

from __future__ import annotations

import pytest

from psicoia.provider.reasoning import ReasoningStyle, ThinkFilter, may_reason, strip_reasoning

SECRET = "el usuario parece en riesgo"  # stands for the model's private assessment


@pytest.mark.parametrize("reply, visible", [
    ("Hola, te escucho.", "Hola, te escucho."),
    (f"<think>{SECRET}</think>\n\nHola, te escucho.", "Hola, te escucho."),
    (f"<THINK>{SECRET}</Think>Hola", "Hola"),
    (f"{SECRET}</think>\n\nHola, te escucho.", "Hola, te escucho."),
    (f"Hola <think>{SECRET}</think>che", "Hola che"),
    (f"Hola <think>{SECRET}", "Hola"),                     # unclosed: runs to the end
    (f"<think>{SECRET} <think> más</think>Hola", "Hola"),  # nested opening: still reasoning
    (f"{SECRET}</think>a</think>Hola", "Hola"),            # the last lone closing tag wins
    ("a < b y <thin no es etiqueta", "a < b y <thin no es etiqueta"),
    (f"<think>{SECRET}</think>", ""),
    (f"{SECRET}</think>", ""),
])
def test_strip_reasoning_keeps_only_the_answer(reply, visible):
    assert strip_reasoning(reply).strip() == visible


def feed_in_pieces(text: str, size: int, hold: bool) -> tuple[list[str], ThinkFilter]:
    filtered = ThinkFilter(hold=hold)
    released = [filtered.feed(text[i:i + size]) for i in range(0, len(text), size)]
    released.append(filtered.finish())
    return released, filtered


BLOCKS = f"<think>{SECRET}</think>\n\nHola, <think>otra</think>te escucho."


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 9, 64])
def test_blocks_split_anywhere_never_release_reasoning(size):
    released, filtered = feed_in_pieces(BLOCKS, size, hold=False)
    assert "".join(released).strip() == "Hola, te escucho."
    assert not any("riesgo" in piece or "<" in piece for piece in released)
    assert filtered.saw_think and not filtered.lone_close


@pytest.mark.parametrize("size", [1, 3, 8, 64])
def test_a_held_reply_with_only_a_closing_tag_drops_all_before_it(size):
    released, filtered = feed_in_pieces(f"{SECRET}</think>\n\nHola, che.", size, hold=True)
    assert "".join(released).strip() == "Hola, che."
    assert not any("riesgo" in piece for piece in released)
    assert filtered.lone_close and not filtered.leaked


def test_a_held_reply_is_released_as_it_comes_once_the_closing_tag_passed():
    filtered = ThinkFilter(hold=True)
    assert filtered.feed(SECRET) == ""
    assert filtered.feed("</think>Ho") == "Ho"
    assert filtered.feed("la") == "la"


def test_a_held_reply_that_opens_with_a_block_is_released_after_the_block():
    filtered = ThinkFilter(hold=True)
    assert filtered.feed(" <think>" + SECRET) == ""
    assert filtered.feed("</think>Hola") == "Hola"


def test_a_held_reply_with_no_tags_comes_out_whole_at_the_end():
    filtered = ThinkFilter(hold=True)
    assert filtered.feed("Hola, ") == "" and filtered.feed("che.") == ""
    assert filtered.finish() == "Hola, che."


def test_a_partial_tag_at_the_end_is_text_when_the_reply_ends():
    filtered = ThinkFilter(hold=False)
    assert filtered.feed("a <thi") == "a "
    assert filtered.finish() == "<thi"


def test_a_lone_closing_tag_after_released_text_is_reported_as_leaked():
    filtered = ThinkFilter(hold=False)
    assert filtered.feed(SECRET) == SECRET
    assert filtered.feed("</think> Hola") == " Hola"
    filtered.finish()
    assert filtered.leaked and filtered.after_lone_close.strip() == "Hola"


def test_the_style_holds_until_a_reply_shows_the_model_and_for_ever_after_a_lone_close():
    style = ReasoningStyle()
    assert style.hold
    plain = ThinkFilter(hold=style.hold)
    plain.feed("<think>x</think>Hola")
    plain.finish()
    style.learn(plain)
    assert not style.hold
    closing = ThinkFilter(hold=style.hold)
    closing.feed("x</think>Hola")
    style.learn(closing)
    assert style.hold
    style.learn(plain)
    assert style.hold


@pytest.mark.parametrize("model, reasons", [
    ("deepseek-r1-distill-llama-70b", True),
    ("deepseek-ai/DeepSeek-R1-0528", True),
    ("openrouter/deepseek/deepseek-r1:free", True),
    ("qwen-qwq-32b", True),
    ("Qwen/QwQ-32B", True),
    ("qwen/qwen3-32b", True),
    ("phi-4-reasoning", True),
    ("llama-3.1-8b-instant", False),
    ("llama-3.3-70b-versatile", False),
    ("gemma2-9b-it", False),
    ("llama-r10", False),
])
def test_model_names_that_suggest_reasoning(model, reasons):
    assert may_reason(model) is reasons
