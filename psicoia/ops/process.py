"""
Process limits a chat server needs, with nothing else imported: the service at start-up and the
benchmark's load generators and floor server use the same function.
"""

from __future__ import annotations

from typing import Optional

try:
    import resource
except ImportError:  # pragma: no cover - not on POSIX
    resource = None  # type: ignore[assignment]


def raise_file_limit() -> Optional[int]:
    """A chat server holds one descriptor per user: use the hard limit we are allowed.

    Returns the soft limit now in force (None where there are no such limits)."""
    if resource is None:  # pragma: no cover - not on POSIX
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft
