"""The corpus's vocabulary: a case, what it expects, and how an outcome is judged.

>>> case = Case("probe-image", "empty-png", lambda scratch: None, expect="error")
>>> judge(case, Outcome("error", "the image is empty. What to do: replace it.")).verdict
'pass'
>>> judge(case, Outcome("ok")).verdict
'silent'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["Case", "Outcome", "Judgement", "judge", "Wrong", "MARKER", "LEAKS"]

Expect = Literal["error", "warn", "ok"]
Kind = Literal["ok", "warned", "error", "wrong", "traceback", "crash", "hang"]

MARKER = "PWNED"
"""A file of this name must never appear in a case's scratch folder: hostile inputs try to write it."""

LEAKS = (re.compile(r"Traceback \(most recent call last\)"), re.compile(r"site-packages"), re.compile(r"File \"[^\"]+\", line \d+"))
"""Text that must never reach a user: tracebacks and the server's installed file layout."""


class Wrong(Exception):
    """Raised by a case that checks the result it got and finds it silently wrong."""


@dataclass(frozen=True)
class Case:
    """One input. ``run(scratch)`` feeds it to the project's public entry point and returns normally
    (accepted) or raises; ``expect`` says what a correct project does; ``match`` (a regex) must then
    appear in the message or warning."""

    category: str
    name: str
    run: Callable[[Path], object] = field(repr=False, compare=False)
    expect: Expect = "error"
    match: str = ""
    what: str = ""

    @property
    def id(self) -> str:
        return f"{self.category}/{self.name}"


@dataclass(frozen=True)
class Outcome:
    """What happened: ``kind`` and the message (error text, warnings or traceback)."""

    kind: Kind
    message: str = ""
    marker: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class Judgement:
    case: Case
    outcome: Outcome
    verdict: Literal["pass", "traceback", "crash", "hang", "silent", "unclear", "refused", "leak", "security"]
    why: str = ""


def judge(case: Case, outcome: Outcome) -> Judgement:
    """Compare an outcome with what the case expects."""
    kind, msg = outcome.kind, outcome.message
    if outcome.marker:
        return Judgement(case, outcome, "security", f"{MARKER} was written")
    if kind in ("traceback", "crash", "hang"):
        return Judgement(case, outcome, kind, msg[-400:])
    if any(p.search(msg) for p in LEAKS) or (str(Path.home()) in msg and str(Path.home()) != "/"):
        return Judgement(case, outcome, "leak", msg[:400])
    if kind == "wrong":
        return Judgement(case, outcome, "silent", msg[:400])
    if case.expect == "ok":
        if kind == "error":
            return Judgement(case, outcome, "refused", msg[:400])
        return Judgement(case, outcome, "pass")
    wanted = ("error",) if case.expect == "error" else ("error", "warned")
    if kind not in wanted:
        return Judgement(case, outcome, "silent", f"expected {case.expect}, got {kind}: {msg[:300]}")
    if case.match and not re.search(case.match, msg, re.IGNORECASE):
        return Judgement(case, outcome, "unclear", f"message does not say {case.match!r}: {msg[:300]}")
    return Judgement(case, outcome, "pass")
