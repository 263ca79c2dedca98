"""
The window of a conversation's history sent to the model.

The session keeps at most ``history.max_messages`` turns (and the store the same), so memory
per user is bounded whatever the conversation length. :func:`build_prompt` chooses what the
model sees: the system prompt plus the newest turns that fit the token budget.
"""

from __future__ import annotations

import math
from typing import Sequence

Message = dict  # {"role": "user" | "assistant" | "system", "content": str}


def estimate_tokens(text: str, chars_per_token: float) -> int:
    return math.ceil(len(text) / chars_per_token)


def build_prompt(
    system_prompt: str,
    history: Sequence[Message | tuple[str, str]],
    user_text: str,
    max_messages: int,
    token_budget: int,
    chars_per_token: float,
) -> list[Message]:
    """
    The messages for one provider call.

    The system prompt always goes first and the new user message always goes last (even when it
    alone exceeds the budget: the user must be answered). Older turns are added newest first while
    the conversation stays within ``token_budget`` and ``max_messages`` (the new message counts).
    ``history`` holds message dicts or ``(role, content)`` pairs (the session keeps pairs: 56
    bytes each where a dict is 184); the result is always dicts.
    """
    used = estimate_tokens(user_text, chars_per_token)
    chosen: list[tuple[str, str]] = []
    for message in reversed(history):
        if len(chosen) + 1 >= max_messages:
            break
        role, content = ((message["role"], message["content"]) if isinstance(message, dict)
                         else message)
        cost = estimate_tokens(content, chars_per_token)
        if used + cost > token_budget:
            break
        used += cost
        chosen.append((role, content))
    chosen.reverse()
    # Some providers reject a conversation that starts with an assistant turn.
    while chosen and chosen[0][0] != "user":
        chosen.pop(0)
    return [
        {"role": "system", "content": system_prompt},
        *({"role": role, "content": content} for role, content in chosen),
        {"role": "user", "content": user_text},
    ]
