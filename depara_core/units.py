"""Quantities as people read them: durations in messages, estimates and progress.

>>> format_duration(95)
'1 min 35 s'
"""

from __future__ import annotations

__all__ = ["format_duration"]


def format_duration(seconds: float) -> str:
    """A duration as people read it, to the second below 90 s, then minutes, then hours.

    >>> format_duration(42.4), format_duration(200), format_duration(7300)
    ('42 s', '3 min 20 s', '2 h 02 min')
    """
    s = max(0, round(seconds))
    if s < 90:
        return f"{s} s"
    if s < 5400:
        return f"{s // 60} min {s % 60:02d} s"
    hours, minutes = divmod(round(s / 60), 60)
    return f"{hours} h {minutes:02d} min"
