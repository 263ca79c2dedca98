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
    history: Sequence[Message],
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
    """
    used = estimate_tokens(user_text, chars_per_token)
    chosen: list[Message] = []
    for message in reversed(history):
        if len(chosen) + 1 >= max_messages:
            break
        cost = estimate_tokens(message["content"], chars_per_token)
        if used + cost > token_budget:
            break
        used += cost
        chosen.append(message)
    chosen.reverse()
    # Some providers reject a conversation that starts with an assistant turn.
    while chosen and chosen[0]["role"] != "user":
        chosen.pop(0)
    return [
        {"role": "system", "content": system_prompt},
        *chosen,
        {"role": "user", "content": user_text},
    ]
