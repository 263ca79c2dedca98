"""
The ``twistd psicoia`` entry point: options, config loading, and the service.

A bad configuration prints one line to stderr and exits non-zero before anything listens.
:func:`make_service` is the one tap body, shared with ``twistd psicoia-gateway``.
"""

from __future__ import annotations

import gc
import sys
from typing import Any, Callable

from twisted.python import usage

from psicoia.app.service import build_service
from psicoia.config import Config, ConfigError, load
from psicoia.ops.logsetup import make_observer, open_log_file
from psicoia.ops.process import raise_file_limit  # noqa: F401 (also the bench's)

class Options(usage.Options):
    synopsis = "[--config PATH]"
    longdesc = (
        "Run the PsicoIA chat server. Without --config, reads ./config.yaml if present, "
        "else built-in defaults; environment variables override either."
    )
    optParameters = [
        ["config", "c", None, "Path to the YAML configuration file."],
    ]


# Young-generation size for the cyclic garbage collector (CPython's default is 700).
GC_GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect garbage less often: every message allocates hundreds of short-lived objects
    (Deferreds, coroutines, HTTP parsers), and with CPython's default threshold the collector
    ran every few messages and took about a tenth of the server's CPU (docs/benchmarks.md).
    Later generations keep their default ratios; memory stays bounded."""
    gen0, gen1, gen2 = gc.get_threshold()
    if gen0 and gen0 < GC_GEN0_THRESHOLD:  # 0: someone turned collection off; leave it
        gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def load_or_exit(path):
    try:
        return load(path)
    except ConfigError as error:
        sys.stderr.write(f"psicoia: config error: {error}\n")
        raise SystemExit(2) from None


def make_service(options, build: Callable[[Config, Any], Any], reactor=None):
    """The one tap body: config, process limits, ``build(config, reactor)``, twistd's log."""
    if reactor is None:
        # Imported here on purpose, not to dodge a cycle: twistd installs the reactor it was
        # asked for (--reactor) before calling makeService; importing it at module level
        # would install the default one first.
        from twisted.internet import reactor
    config = load_or_exit(options["config"])
    raise_file_limit()
    tune_gc()
    try:
        service = build(config, reactor)  # opening storage can still find a config error
    except ConfigError as error:
        sys.stderr.write(f"psicoia: config error: {error}\n")
        raise SystemExit(2) from None
    parent = getattr(options, "parent", None)
    if parent is not None:
        output = open_log_file(parent.get("logfile"), bool(parent.get("nodaemon")))
        service.log_observer = make_observer(config.log, output)
    return service


def makeService(options, reactor=None):
    return make_service(options, build_service, reactor)
