"""
The ``redis`` backend's conversations: any number of instances share them through one Redis.

Keys (``PREFIX`` = ``psicoia:``), all expiring ``retention`` seconds after the last message
(Redis deletes them itself, so :meth:`RedisStore.purge` has nothing to do):

- ``psicoia:number``: the one ``Usuario-N`` counter (INCR: unique across instances).
- ``psicoia:conv:<id>``: a hash with ``number``, ``created``, ``updated``, ``risk`` (JSON of
  numbers) and ``secret`` (the resume secret's hash, hex).
- ``psicoia:turns:<id>``: a list of turns, oldest first, trimmed to the history window. Each
  item is JSON ``[role, text]``; with a cipher the text is sealed and base64-encoded.
- ``psicoia:secret:<hash hex>``: the conversation id that resume secret opens.

Every operation is one Lua script (atomic in Redis), run through the link's
:class:`~psicoia.storage.redis_batch.ScriptBatch`: the writes of many messages (and the
provider slots' scripts) asked for in one reactor turn share one round trip. Scripts build some key
names from their arguments, so the keys must live on one Redis (no Redis Cluster). Resuming publishes a
claim on ``psicoia:claims`` in the same script, so the instance that carried the conversation
closes that connection (:mod:`psicoia.storage.redis_bus`).

Errors: every Deferred fails with StorageUnavailable when Redis cannot answer in time; the
core then keeps answering from memory (see :class:`~psicoia.storage.redis_link.RedisLink`).
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any, Optional, Protocol, Sequence

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from psicoia.chat.ports import Conversation, IConversationStore, StorageUnavailable, Turn
from psicoia.storage.redis_link import RedisLink

PREFIX = "psicoia:"
CLAIMS = PREFIX + "claims"


class Cipher(Protocol):
    """What the store needs from ``psicoia.storage.crypto.TextCipher``: seal text with a
    context (the conversation id), open it again."""

    def seal(self, text: str, context: str) -> bytes: ...

    def open(self, blob: bytes, context: str) -> str: ...


# KEYS: conv, secret, number. ARGV: id, secret hex, now, retention seconds.
_CREATE = """
local number = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'number', number, 'created', ARGV[3], 'updated', ARGV[3],
           'risk', '{}', 'secret', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[4])
return number
"""

# KEYS: secret. ARGV: prefix, claims channel, instance. Returns {id, number, created, updated,
# risk, turns...} or nil.
_RESUME = """
local id = redis.call('GET', KEYS[1])
if not id then return nil end
local conv = ARGV[1] .. 'conv:' .. id
local fields = redis.call('HMGET', conv, 'number', 'created', 'updated', 'risk')
if not fields[1] then return nil end
redis.call('PUBLISH', ARGV[2], ARGV[3] .. ' ' .. id)
local reply = {id, fields[1], fields[2], fields[3], fields[4]}
for _, turn in ipairs(redis.call('LRANGE', ARGV[1] .. 'turns:' .. id, 0, -1)) do
  table.insert(reply, turn)
end
return reply
"""

# KEYS: conv, turns, secret-prefix. ARGV: now, retention, what ('risk'|'clear'), risk JSON.
_TOUCH = """
local secret = redis.call('HGET', KEYS[1], 'secret')
if not secret then return 0 end
if ARGV[3] == 'risk' then redis.call('HSET', KEYS[1], 'risk', ARGV[4]) end
if ARGV[3] == 'clear' then redis.call('DEL', KEYS[2]) end
redis.call('HSET', KEYS[1], 'updated', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[3] .. secret, ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return 1
"""

# KEYS: conv, turns, secret-prefix.
_FORGET = """
local secret = redis.call('HGET', KEYS[1], 'secret')
if secret then redis.call('DEL', KEYS[3] .. secret) end
return redis.call('DEL', KEYS[1], KEYS[2])
"""


@implementer(IConversationStore)
class RedisStore:
    """Conversations in Redis (module docstring for the keys).

    ``retention_seconds``: a conversation's keys expire that long after its last message.
    ``cipher``: optional; when given, turn text is sealed at rest with the conversation id
    as context (the same ``TextCipher`` the SQLite backend uses).
    """

    #: Numbers kept in hand (taken from the counter with one INCRBY) for conversations that
    #: start while Redis is unreachable.
    RESERVE = 20

    def __init__(self, link: RedisLink, retention_seconds: float,
                 cipher: Optional[Cipher] = None) -> None:
        self.link = link
        self.retention = max(1, int(retention_seconds))
        self.cipher = cipher
        self.reserve: list[int] = []
        self._refilling = False
        for name, body in _SCRIPTS.items():
            link.batch.define(name, body)

    @property
    def health(self) -> str:
        return "ok" if self.link.up else "degraded"

    @property
    def reason(self) -> Optional[str]:
        """Why it is degraded (``/readyz`` shows it), or None."""
        return None if self.link.up else "redis unreachable"

    def create(self, secret_hash: bytes, now: float) -> Deferred:
        """A new conversation numbered by the shared counter. While Redis is unreachable it
        takes a number from :attr:`reserve` and lives only in this process (its resume code
        will not work); StorageUnavailable only when the reserve is empty too."""
        conversation_id = secrets.token_hex(12)
        keys = [_conv(conversation_id), _secret(secret_hash), PREFIX + "number"]
        made = self._eval("create", keys, [conversation_id, secret_hash.hex(), repr(now),
                                          self.retention])
        made.addCallbacks(self._created, self._from_reserve,
                          callbackArgs=(conversation_id, now),
                          errbackArgs=(conversation_id, now))
        return made

    def _created(self, number: Any, conversation_id: str, now: float) -> Conversation:
        if not self.reserve and not self._refilling:
            self._refill()
        return Conversation(conversation_id, int(number), now, now)

    def _from_reserve(self, failure, conversation_id: str, now: float) -> Conversation:
        failure.trap(StorageUnavailable)
        if not self.reserve:
            return failure
        return Conversation(conversation_id, self.reserve.pop(0), now, now)

    def _refill(self) -> None:
        self._refilling = True
        taken = self.link.call("incrby", PREFIX + "number", self.RESERVE)

        def got(last: Any) -> None:
            last = int(last)
            self.reserve.extend(range(last - self.RESERVE + 1, last + 1))

        taken.addCallbacks(got, lambda failure: failure.trap(StorageUnavailable))
        taken.addBoth(lambda _: setattr(self, "_refilling", False))

    def resume(self, secret_hash: bytes, now: float) -> Deferred:
        found = self._eval("resume", [_secret(secret_hash)],
                           [PREFIX, CLAIMS, self.link.instance])
        return found.addCallback(self._conversation)

    def _conversation(self, reply: Optional[list]) -> Optional[Conversation]:
        if not reply:
            return None
        conversation_id, number, created, updated, risk, *turns = reply
        return Conversation(conversation_id, int(number), float(created), float(updated),
                            [self._turn(conversation_id, item) for item in turns],
                            json.loads(risk))

    def append(self, conversation_id: str, turns: Sequence[Turn], keep: int,
               now: float, risk: Optional[dict] = None) -> Deferred:
        """Adds the turns (and replaces the crisis state, if ``risk``) in one script."""
        items = [self._item(conversation_id, turn) for turn in turns]
        written = self._eval("append", [_conv(conversation_id), _turns(conversation_id),
                                             PREFIX + "secret:"],
                             [repr(now), self.retention, max(1, keep),
                              "" if risk is None else json.dumps(risk), *items])
        return written.addCallback(lambda _: None)

    def save_risk(self, conversation_id: str, risk: dict, now: float) -> Deferred:
        return self._touch(conversation_id, now, "risk", json.dumps(risk))

    def clear(self, conversation_id: str, now: float) -> Deferred:
        return self._touch(conversation_id, now, "clear", "")

    def _touch(self, conversation_id: str, now: float, what: str, risk: str) -> Deferred:
        written = self._eval("touch", [_conv(conversation_id), _turns(conversation_id),
                                      PREFIX + "secret:"],
                             [repr(now), self.retention, what, risk])
        return written.addCallback(lambda _: None)

    def forget(self, conversation_id: str) -> Deferred:
        """Deletes the keys at once. With ``appendonly yes`` the text stays in the AOF file
        until Redis rewrites it (docs/operations.md, "Redis persistence")."""
        gone = self._eval("forget", [_conv(conversation_id), _turns(conversation_id),
                                    PREFIX + "secret:"], [])
        return gone.addCallback(lambda _: None)

    def purge(self, older_than: float) -> Deferred:
        """Redis expires conversations itself (TTL = retention): nothing to do; Deferred[0]."""
        return succeed(0)

    def close(self) -> Deferred:
        return self.link.close()

    # --- encoding ---------------------------------------------------------------------------

    def _item(self, conversation_id: str, turn: Turn) -> str:
        text = turn.content
        if self.cipher is not None:
            text = base64.b64encode(self.cipher.seal(text, conversation_id)).decode("ascii")
        return json.dumps([turn.role, text], ensure_ascii=False)

    def _turn(self, conversation_id: str, item: str) -> Turn:
        role, text = json.loads(item)
        if self.cipher is not None:
            text = self.cipher.open(base64.b64decode(text), conversation_id)
        return Turn(role, text)

    def _eval(self, name: str, keys: list, args: list) -> Deferred:
        return self.link.batch.run(name, keys, args)


# KEYS: conv, turns, secret-prefix. ARGV: now, retention, keep, risk ('' to keep it), turns...
_TOUCH_APPEND = """
local secret = redis.call('HGET', KEYS[1], 'secret')
if not secret then return 0 end
for i = 5, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'risk', ARGV[4]) end
redis.call('HSET', KEYS[1], 'updated', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[3] .. secret, ARGV[2])
return 1
"""

_SCRIPTS = {"create": _CREATE, "resume": _RESUME, "touch": _TOUCH, "forget": _FORGET,
            "append": _TOUCH_APPEND}


def _conv(conversation_id: str) -> str:
    return f"{PREFIX}conv:{conversation_id}"


def _turns(conversation_id: str) -> str:
    return f"{PREFIX}turns:{conversation_id}"


def _secret(secret_hash: bytes) -> str:
    return f"{PREFIX}secret:{secret_hash.hex()}"


__all__ = ["CLAIMS", "PREFIX", "RedisStore"]
