"""
The ``twistd psicoia-gateway`` entry point: the page and the WebSocket only, each browser
bridged to its own TCP connection to a PsicoIA core (``--upstream tcp:HOST:5001``).

It reads the same config file as the core (server.http, server.websocket, limits, log); the
core's other sections are ignored here. A bad config or upstream string exits non-zero before
anything listens.
"""

from __future__ import annotations

from twisted.python import usage

from psicoia.app.tap import load_or_exit, raise_file_limit


def check_upstream(description: str) -> None:
    """Parse a client endpoint string the way the gateway will, without connecting."""
    from twisted.internet.endpoints import clientFromString
    from twisted.internet.testing import MemoryReactor

    try:
        clientFromString(MemoryReactor(), description)
    except Exception as exc:  # endpoint parsers raise many types; all mean "bad string"
        raise usage.UsageError(
            f"--upstream: not a valid client endpoint string ({exc.__class__.__name__}: {exc})"
        ) from None


class Options(usage.Options):
    synopsis = "--upstream tcp:HOST:PORT [--config PATH]"
    longdesc = (
        "Serve the PsicoIA chat page and WebSocket, bridging each browser to its own TCP "
        "connection to a PsicoIA server (gateway mode)."
    )
    optParameters = [
        ["config", "c", None, "Path to the YAML configuration file."],
        ["upstream", "u", None, "Client endpoint of the PsicoIA TCP listener, e.g. tcp:psicoia:5001."],
    ]

    def postOptions(self) -> None:
        if not self["upstream"]:
            raise usage.UsageError("--upstream is required (e.g. --upstream tcp:127.0.0.1:5001)")
        check_upstream(self["upstream"])


def makeService(options, reactor=None):
    from psicoia.app.gateway import build_gateway
    from psicoia.ops.logsetup import make_observer, open_log_file

    if reactor is None:
        from twisted.internet import reactor
    config = load_or_exit(options["config"])
    raise_file_limit()
    service = build_gateway(config, options["upstream"], reactor)
    parent = getattr(options, "parent", None)
    if parent is not None:
        output = open_log_file(parent.get("logfile"), bool(parent.get("nodaemon")))
        service.log_observer = make_observer(config.log, output)
    return service
