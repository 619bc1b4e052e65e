"""One log line per event on stderr, as text (`key=value`) or JSON, so people and the harness can read it."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


class _Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        fields = getattr(record, "fields", None) or {}
        tail = " ".join(f"{k}={_quote(v)}" for k, v in fields.items())
        line = f"{stamp} {record.levelname.lower()} {record.getMessage()}" + (f" {tail}" if tail else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **(getattr(record, "fields", None) or {}),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def _quote(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (not text or any(c in text for c in ' ="\n')) else text


def setup(fmt: str = "text", level: int = logging.INFO) -> None:
    """Log to stderr in `fmt` (text or json); the kubernetes client's own chatter stays at WARNING, urllib3's at
    ERROR (it warns on each connection retry inside one request; a controller logs its own attempts once)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Json() if fmt == "json" else _Text())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)
