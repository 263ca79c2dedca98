"""
The ``twistd psicoia-gateway`` entry point: the page and the WebSocket only, each browser
bridged to its own TCP connection to a PsicoIA core (``--upstream tcp:HOST:5001``).

It reads the same config file as the core (server.http, server.websocket, limits, log); the
core's other sections are ignored here. A bad config or upstream string exits non-zero before
anything listens.
"""

from __future__ import annotations

from twisted.python import usage

from psicoia.app.gateway import build_gateway
from psicoia.app.tap import make_service
from psicoia.config import endpoint_problem


def check_upstream(description: str) -> None:
    """Parse a client endpoint string the way the gateway will, without connecting."""
    problem = endpoint_problem(description, client=True)
    if problem:
        raise usage.UsageError(f"--upstream: {problem}")


class Options(usage.Options):
    synopsis = "--upstream tcp:HOST:PORT [--config PATH]"
    longdesc = (
        "Serve the PsicoIA chat page and WebSocket, bridging each browser to its own TCP "
        "connection to a PsicoIA server (gateway mode)."
    )
    optFlags = [
        ["send-proxy", None, "Start each upstream connection with a PROXY protocol v1 header "
                             "naming the browser (the core listens with haproxy:..., e.g. "
                             "server.tcp_proxied)."],
    ]
    optParameters = [
        ["config", "c", None, "Path to the YAML configuration file."],
        ["upstream", "u", None, "Client endpoint of the PsicoIA TCP listener, e.g. tcp:psicoia:5001."],
    ]

    def postOptions(self) -> None:
        if not self["upstream"]:
            raise usage.UsageError("--upstream is required (e.g. --upstream tcp:127.0.0.1:5001)")
        check_upstream(self["upstream"])


def makeService(options, reactor=None):
    return make_service(options, lambda config, reactor: build_gateway(
        config, options["upstream"], reactor, send_proxy=bool(options["send-proxy"])), reactor)
