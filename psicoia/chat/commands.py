"""
What a user can type besides a message: ``salir`` and the slash commands.

:func:`parse` tells a command from a message; :func:`run` carries one out for a session (some
change its conversation: ``/reset``, ``/retomar``, ``/olvidar``). Commands are never rate
limited and never reach the model.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple, Optional

from twisted.internet.defer import Deferred, succeed

from psicoia import texts
from psicoia.chat import recall, resume
from psicoia.chat.ports import Conversation
from psicoia.chat.vocabulary import Kind, Reply

if TYPE_CHECKING:  # the session imports this module; annotations only
    from psicoia.chat.session import Session

GOODBYE = "salir"
HELP = "/ayuda"
RESOURCES = "/recursos"
RESET = "/reset"
RESUME = "/retomar"
FORGET = "/olvidar"
UNKNOWN = "/"

# Commands that take no argument.
_PLAIN = frozenset({HELP, RESOURCES, RESET, FORGET})


class Command(NamedTuple):
    """A parsed command: ``name`` is one of the constants above; ``argument`` what follows."""

    name: str
    argument: str = ""


def is_goodbye(text: str) -> bool:
    """The user's way out: "salir", in any case, surrounding spaces ignored."""
    return text.strip().lower() == GOODBYE


def parse(text: str) -> Optional[Command]:
    """The command in ``text``, ``Command(UNKNOWN)`` for an unknown one, None for a message.

    A message that starts with "/" and has no space is a command; ``/retomar`` takes the code
    after it (``/retomar ABCDE-FGHJK``).
    """
    stripped = text.strip()
    if stripped.lower() == GOODBYE:
        return Command(GOODBYE)
    if not stripped.startswith("/"):
        return None
    word, _, rest = stripped.partition(" ")
    word = word.lower()
    if word == RESUME:
        return Command(RESUME, rest.strip())
    if rest.strip():
        return None  # "/ a veces pienso..." is a message, not a command
    return Command(word if word in _PLAIN else UNKNOWN)


def run(session: "Session", command: Command, trace_id: str) -> Deferred:
    """``salir``, ``/ayuda``, ``/recursos``, ``/reset``, ``/retomar``, ``/olvidar``."""
    name = command.name
    if name == GOODBYE:
        return succeed(session.notice(trace_id, texts.GOODBYE, Kind.GOODBYE, close=True))
    if name == RESUME:
        return _resume(session, command.argument, trace_id)
    if name == FORGET:
        return _forget(session, trace_id)
    if name == HELP:
        text = texts.HELP
    elif name == RESOURCES:
        # The lines also go as resources, so the page shows them as tel: links.
        reply = session.notice(trace_id, texts.RESOURCES_REPLY.format(
            resources=session.manager.resources_text()), Kind.COMMAND)
        return succeed(replace(reply, resources=session.manager.crisis.resources("risk")))
    elif name == RESET:
        recall.clear(session)
        if session.companion is not None:
            session.companion.reset()
        text = texts.RESET_DONE
    else:
        text = texts.UNKNOWN_COMMAND
    return succeed(session.notice(trace_id, text, Kind.COMMAND))


def _resume(session: "Session", typed: str, trace_id: str) -> Deferred:
    manager = session.manager
    if not typed:
        return succeed(session.notice(trace_id, texts.RESUME_USAGE, Kind.COMMAND))
    if manager.resume_throttle.check(session.peer):
        return succeed(session.notice(trace_id, texts.RESUME_SLOW_DOWN, Kind.COMMAND))
    try:
        secret = resume.hash_code(typed)
    except ValueError:
        return succeed(_wrong_code(session, trace_id))
    found = manager.store.resume(secret, manager.clock.seconds())
    return found.addCallbacks(_resumed, _storage_failed_reply,
                              callbackArgs=(session, typed, trace_id),
                              errbackArgs=(session, trace_id))


def _wrong_code(session: "Session", trace_id: str) -> Reply:
    session.manager.resume_throttle.record(session.peer)
    return session.notice(trace_id, texts.RESUME_UNKNOWN, Kind.COMMAND)


def _resumed(conversation: Optional[Conversation], session: "Session", typed: str,
             trace_id: str) -> Reply:
    if conversation is None:
        return _wrong_code(session, trace_id)
    if conversation.id == session.conversation_id:
        return session.notice(trace_id, texts.RESUME_SAME, Kind.COMMAND)
    if session.closed:
        return Reply("", Kind.ERROR, trace_id)
    previous_id, was_empty = session.conversation_id, recall.is_empty(session)
    session.manager.claim(conversation.id, previous_id, session.taken_over)
    if was_empty:  # the fresh conversation made at connect holds nothing worth keeping
        session.manager.persist(session.manager.store.forget(previous_id))
    session.adopt(conversation, resume.display(typed))
    session.listener.on_conversation(session.user, session.code, conversation.turns)
    return session.notice(trace_id, texts.RESUMED.format(number=session.number), Kind.COMMAND)


def _forget(session: "Session", trace_id: str) -> Deferred:
    """Delete the conversation now; this connection goes on as a new one."""
    manager = session.manager
    forgotten = manager.store.forget(session.conversation_id)
    code = resume.new_code()
    forgotten.addCallback(lambda _: manager.store.create(resume.hash_code(code),
                                                         manager.clock.seconds()))
    return forgotten.addCallbacks(_forgotten, _storage_failed_reply,
                                  callbackArgs=(session, code, trace_id),
                                  errbackArgs=(session, trace_id))


def _forgotten(conversation: Conversation, session: "Session", code: str,
               trace_id: str) -> Reply:
    if session.closed:
        return Reply("", Kind.ERROR, trace_id)
    session.manager.claim(conversation.id, session.conversation_id, session.taken_over)
    session.adopt(conversation, code)
    session.listener.on_conversation(session.user, session.code, [])
    return session.notice(trace_id, texts.FORGOTTEN.format(number=session.number, code=code),
                          Kind.COMMAND)


def _storage_failed_reply(failure, session: "Session", trace_id: str) -> Reply:
    session.manager.storage_failed(failure)
    return session.notice(trace_id, texts.ERROR, Kind.ERROR)
