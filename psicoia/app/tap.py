"""
The ``twistd psicoia`` entry point: options, config loading, and the service.

A bad configuration prints one line to stderr and exits non-zero before anything listens.
"""

from __future__ import annotations

import sys
from typing import Optional

from twisted.python import usage

from psicoia.config import ConfigError, load


class Options(usage.Options):
    synopsis = "[--config PATH]"
    longdesc = (
        "Run the PsicoIA chat server. Without --config, reads ./config.yaml if present, "
        "else built-in defaults; environment variables override either."
    )
    optParameters = [
        ["config", "c", None, "Path to the YAML configuration file."],
    ]


def raise_file_limit() -> Optional[int]:
    """A chat server holds one descriptor per user: use the hard limit we are allowed.

    Returns the soft limit now in force (None where there are no such limits)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
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


# Young-generation size for the cyclic garbage collector (CPython's default is 700).
GC_GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect garbage less often: every message allocates hundreds of short-lived objects
    (Deferreds, coroutines, HTTP parsers), and with CPython's default threshold the collector
    ran every few messages and took about a tenth of the server's CPU (docs/benchmarks.md).
    Later generations keep their default ratios; memory stays bounded."""
    import gc

    gen0, gen1, gen2 = gc.get_threshold()
    if gen0 and gen0 < GC_GEN0_THRESHOLD:  # 0: someone turned collection off; leave it
        gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def load_or_exit(path):
    try:
        return load(path)
    except ConfigError as error:
        sys.stderr.write(f"psicoia: config error: {error}\n")
        raise SystemExit(2) from None


def makeService(options, reactor=None):
    from psicoia.ops.logsetup import make_observer, open_log_file
    from psicoia.app.service import build_service

    if reactor is None:
        from twisted.internet import reactor
    config = load_or_exit(options["config"])
    raise_file_limit()
    tune_gc()
    service = build_service(config, reactor)
    parent = getattr(options, "parent", None)
    if parent is not None:
        output = open_log_file(parent.get("logfile"), bool(parent.get("nodaemon")))
        service.log_observer = make_observer(config.log, output)
    return service
