"""The worker's log lines on stderr: plain text on a terminal, or one JSON object a line.

``LOG_FORMAT=json`` (set by the deploy's Batch job definition) gives the same shape as the
functions' logs (``time``, ``level``, ``msg``, fields), so CloudWatch Logs Insights and ``jq`` read
both alike. Stdout stays for results (``train`` prints the result message there).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone
from typing import Protocol, TextIO

FORMATS = ("text", "json")


class Log(Protocol):
    def __call__(self, msg: str, level: str = "info", **fields: object) -> None: ...


def log_format(value: str | None = None) -> str:
    fmt = (value if value is not None else os.environ.get("LOG_FORMAT", "")).strip().lower() or "text"
    if fmt not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def stderr_log(fmt: str | None = None, stream: TextIO | None = None, **context: object) -> Log:
    """A logger writing to ``stream`` (stderr); ``context`` fields go on every JSON line."""
    fmt = log_format(fmt)

    def log(msg: str, level: str = "info", **fields: object) -> None:
        out = stream or sys.stderr
        if fmt == "json":
            record = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                      "level": level, "msg": msg, **context, **fields}
            out.write(json.dumps(record, default=str) + "\n")
        else:  # context is for machines; a call's own fields (a traceback, say) are for people too
            line = msg if level == "info" else f"{level}: {msg}"
            short = " ".join(f"{k}={v}" for k, v in fields.items() if "\n" not in str(v))
            long = [str(v).rstrip("\n") for v in fields.values() if "\n" in str(v)]
            out.write("\n".join([f"{line} {short}" if short else line, *long]) + "\n")
        out.flush()

    return log


_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error", logging.CRITICAL: "error"}


class _ToLog(logging.Handler):
    def __init__(self, log: Log):
        super().__init__()
        self._to = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._to(record.getMessage(), _LEVELS.get(record.levelno, "info"), logger=record.name)
        except Exception:  # a log line must never take the worker down
            self.handleError(record)


def route_library_logs(fmt: str | None = None) -> None:
    """In JSON mode, send Python ``logging`` and ``warnings`` (transformers, diffusers, torch) through
    the same JSON lines, so a log reader never meets a line it cannot parse. Library progress bars
    are turned off."""
    if log_format(fmt) != "json":
        return
    root = logging.getLogger()
    root.handlers[:] = [_ToLog(stderr_log("json"))]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)
    for name in ("transformers", "diffusers"):
        try:
            library = __import__(f"{name}.utils.logging", fromlist=["logging"])
        except ImportError:
            continue
        library.disable_default_handler()
        library.enable_propagation()
        library.disable_progress_bar()  # "Loading weights" bars are terminal drawings, not log lines
