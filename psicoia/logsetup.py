"""
Choose the log observer at start-up: text or JSON lines, filtered by level.

twistd starts logging after the plugin builds its service; the observer we attach to the
application as an ``ILogObserver`` component is the one it uses. ``--logfile`` (and ``-n`` for
stdout) keep their twistd meaning.
"""

from __future__ import annotations

import sys
from typing import IO, Optional

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    jsonFileLogObserver,
    textFileLogObserver,
)
from twisted.python.logfile import LogFile

from .config import LogConfig


def open_log_file(logfile: Optional[str], nodaemon: bool) -> IO[str]:
    """Where twistd itself would log: stdout for ``-`` or ``-n`` without a file."""
    if logfile == "-" or (not logfile and nodaemon):
        return sys.stdout
    return LogFile.fromFullPath(logfile or "twistd.log")


def make_observer(config: LogConfig, output: IO[str]) -> ILogObserver:
    if config.format == "json":
        observer = jsonFileLogObserver(output)
    else:
        observer = textFileLogObserver(output)
    level = LogLevel.levelWithName(config.level)
    return FilteringLogObserver(observer, [LogLevelFilterPredicate(defaultLogLevel=level)])
