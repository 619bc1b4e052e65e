"""Conventions every command follows, kept in one place: `--format text|json`.

It lives at the bottom so the commands of every layer (the operator's and the validator's too) spell them alike.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

FORMATS = ("text", "json")


def add_format_option(parser: argparse.ArgumentParser, default: str = "text", json_holds: str = "") -> None:
    """`--format text|json`; `--json`, the older spelling, still works but is no longer listed."""
    detail = f"; json: {json_holds}" if json_holds else ""
    help_text = f"output format (default: {default}{detail})"
    parser.add_argument("--format", choices=FORMATS, default=default, help=help_text)
    parser.add_argument("--json", dest="format", action="store_const", const="json", help=argparse.SUPPRESS)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))
