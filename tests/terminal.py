"""Start a process as a user does from a terminal, where Ctrl-C (SIGINT) has its default meaning.

A test session started in the background by a non-interactive shell (nohup, `cmd &`, some CI runners) has
SIGINT ignored, and children inherit an ignored signal: a Ctrl-C test would then interrupt nothing and pass
or fail for the wrong reason. A handled signal, unlike an ignored one, is reset to the default on exec.
"""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def popen(argv: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(argv, text=True, **kwargs)
    finally:
        signal.signal(signal.SIGINT, previous)
