"""The corpus of hostile inputs: its size and classes, the runner's own verdicts, and (slow) the whole run."""

from __future__ import annotations

import collections
import os
import re
import time
from pathlib import Path

import pytest

from fuzz.corpus import MARKER, Case
from fuzz.runner import all_cases, run_cases, summary_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "HARDENING.md"


def test_the_corpus_has_every_class_and_400_cases():
    cases = all_cases()
    cats = collections.Counter(c.category for c in cases)
    assert len(cases) >= 400
    for needed in ("probe-image", "probe-archive", "server-path", "checkpoint", "torchscript", "app-code", "user-builder", "user-forward", "ground-truth", "cli-number"):
        assert cats[needed] >= 5, needed
    assert {c.expect for c in cases} == {"error", "warn", "ok"}  # valid controls too: a project that refuses everything fails


def selftest_cases() -> list[Case]:
    """Cases whose outcome the runner must tell apart."""

    def crash(scratch):
        os._exit(7)

    def hang(scratch):
        time.sleep(600)

    def traceback(scratch):
        return {}["missing"]

    def marker(scratch):
        (scratch / MARKER).touch()

    def leaks(scratch):
        from depara_core.errors import DeparaError

        raise DeparaError('boom in File "/x/site-packages/y.py", line 3')

    def refuses(scratch):
        from depara_core.errors import DeparaError

        raise DeparaError("no", "never")

    return [
        Case("self", "crash", crash), Case("self", "hang", hang), Case("self", "traceback", traceback),
        Case("self", "marker", marker, "ok"), Case("self", "silent", lambda s: None), Case("self", "leak", leaks),
        Case("self", "refused", refuses, "ok"), Case("self", "unclear", refuses, match="something else"),
        Case("self", "pass", refuses), Case("self", "after-crash-pass", lambda s: None, "ok"),
    ]  # fmt: skip


def test_the_runner_tells_crashes_hangs_tracebacks_and_silence_apart(tmp_path):
    verdicts = {j.case.name: j.verdict for j in run_cases(selftest_cases(), tmp_path, timeout=20, source="fuzz.test_corpus:selftest_cases")}
    assert verdicts == {
        "crash": "crash", "hang": "hang", "traceback": "traceback", "marker": "security", "silent": "silent", "leak": "leak",
        "refused": "refused", "unclear": "unclear", "pass": "pass", "after-crash-pass": "pass",
    }  # fmt: skip


@pytest.mark.slow
def test_the_whole_corpus_gets_clear_answers_and_the_docs_table_is_current(tmp_path):
    judgements = run_cases(all_cases(), tmp_path)
    failures = [f"{j.verdict}: {j.case.id}: {j.why[:300]}" for j in judgements if j.verdict != "pass"]
    assert not failures, "\n".join(failures)
    table = summary_table(judgements)
    documented = re.search(r"<!-- corpus-table -->\n(.*?)\n<!-- /corpus-table -->", DOC.read_text(), re.S)
    assert documented and documented.group(1).strip() == table.strip(), "update docs/HARDENING.md with: cd tests && python -m fuzz.runner --markdown"
