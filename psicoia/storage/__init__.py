"""Conversation storage: implementations of ``psicoia.chat.ports.IConversationStore``
(``memory``, ``sqlite``), encryption at rest, retention, and :func:`open_store`."""

from psicoia.storage.factory import open_store

__all__ = ["open_store"]
