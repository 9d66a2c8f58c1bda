"""Moments as people read them: "3 minutes ago", with the exact UTC time beside it."""

from __future__ import annotations

from datetime import UTC, datetime

_UNITS = (
    (365 * 86_400, "year"),
    (30 * 86_400, "month"),
    (7 * 86_400, "week"),
    (86_400, "day"),
    (3_600, "hour"),
    (60, "minute"),
)


def relative(moment: datetime, now: datetime) -> str:
    """``moment`` relative to ``now``: "just now", "5 minutes ago", "in 2 days"."""
    seconds = int((now - moment).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 45:
        return "just now"
    count, unit = 1, "minute"
    for size, name in _UNITS:
        if seconds >= size:
            count, unit = max(1, round(seconds / size)), name
            break
    text = f"{count} {unit}{'s' if count != 1 else ''}"
    return f"in {text}" if future else f"{text} ago"


def exact(moment: datetime) -> str:
    """``2026-12-04 17:03:09 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
