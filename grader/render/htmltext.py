"""Text as the HTML report shows it: points and counts formatted, colour codes and control
characters removed, progress-bar redraws collapsed, and anchors made from check ids."""
from __future__ import annotations

import re
from typing import Any

# ANSI escape sequences (CSI and OSC) and the control characters HTML cannot carry.
_ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def format_points(value: Any) -> str:
    """23.5 -> "23.5", 24.0 -> "24", 1/3 -> "0.33"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return clean(str(value))
    if number != number:  # NaN
        return "?"
    text = f"{round(number, 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_count(value: Any) -> str:
    """34944 -> "34,944"; leaves text that is not a number alone."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() else f"{value:,.2f}"
    text = clean(str(value)).strip()
    if re.fullmatch(r"-?\d+", text):
        return f"{int(text):,}"
    return text


def clean(text: str) -> str:
    """Text safe to put in a page: no ANSI colour codes, no raw control characters."""
    text = _ANSI_RE.sub("", text)
    return _CONTROL_RE.sub("\N{REPLACEMENT CHARACTER}", text)


def terminal_text(text: str) -> str:
    """What a terminal would have shown: each carriage return (progress bars) redraws its line."""
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if "\r" in line:
            parts = [p for p in line.split("\r") if p]
            line = parts[-1] if parts else ""
        lines.append(line)
    return clean("\n".join(lines))


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"
