"""Run the corpus in worker processes: a crash or a hang costs one case, not the run.

Each worker imports torch and the project once, then runs the cases it is sent, one at a time, in
a fresh scratch folder. A case that outlives its time limit is a hang (the worker is killed and
replaced); a worker that dies is a crash. Run it as ``python -m fuzz.runner`` from ``tests/``
(``--markdown`` prints the table for ``docs/HARDENING.md``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import selectors
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from fuzz.corpus import MARKER, Case, Judgement, Outcome, Wrong, judge

__all__ = ["all_cases", "run_cases", "summary_table", "CASE_TIMEOUT"]

CASE_TIMEOUT = 60.0
"""Seconds a case may take before it counts as a hang."""
MODEL_TIMEOUT = "20"
"""The project's own limit on building and first running a code-defined model, for the workers."""


def all_cases() -> list[Case]:
    """Every case of the corpus, in a fixed order."""
    from fuzz import cases_cli, cases_models, cases_probes, cases_tables

    cases = [c for mod in (cases_probes, cases_models, cases_tables, cases_cli) for c in mod.cases()]
    ids = [c.id for c in cases]
    dupes = [i for i, n in collections.Counter(ids).items() if n > 1]
    assert not dupes, f"duplicate case ids: {dupes}"
    return cases


# ---- the worker ----------------------------------------------------------------------------
def _run_one(case: Case, scratch: Path) -> Outcome:
    from depara_core.errors import DeparaError

    start = time.perf_counter()
    scratch.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        warnings.simplefilter("always")
        try:
            case.run(scratch)
            kind, message = ("warned" if caught else "ok"), " | ".join(str(w.message) for w in caught)
        except DeparaError as exc:
            kind, message = "error", str(exc)
        except Wrong as exc:
            kind, message = "wrong", str(exc)
        except BaseException:  # noqa: BLE001 - anything else reaching the caller is the defect being measured
            kind, message = "traceback", traceback.format_exc(limit=6)
    marker = any(p.name == MARKER for p in scratch.rglob("*")) or (scratch.parent / MARKER).exists()
    return Outcome(kind, message, marker, time.perf_counter() - start)


def worker() -> None:
    """Read case ids from stdin, write one JSON outcome per line to the original stdout."""
    results = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever a case prints goes to stderr, never into the protocol
    import torch

    torch.set_num_threads(1)
    source = os.environ.get("FUZZ_CASES", "")  # another list of cases, "module:function" (the runner's own tests)
    if source:
        import importlib

        mod, _, fn = source.partition(":")
        listed = getattr(importlib.import_module(mod), fn)()
    else:
        listed = all_cases()
    cases = {c.id: c for c in listed}
    root = Path(os.environ["FUZZ_SCRATCH"])
    for line in sys.stdin:
        case_id = line.strip()
        outcome = _run_one(cases[case_id], root / case_id.replace("/", "__"))
        results.write(json.dumps({"id": case_id, **outcome.__dict__}) + "\n")


# ---- the parent ----------------------------------------------------------------------------
class _Worker:
    def __init__(self, scratch: Path, source: str = "") -> None:
        (scratch / "modules").mkdir(parents=True, exist_ok=True)  # on the import path from the start
        env = {"FUZZ_CASES": source, **os.environ, "FUZZ_SCRATCH": str(scratch), "DEPARA_CACHE_DIR": str(scratch / "cache"), "DEPARA_MODEL_TIMEOUT": MODEL_TIMEOUT, "PYTHONFAULTHANDLER": ""}
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), str(scratch / "modules"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from fuzz.runner import worker; worker()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=scratch,
        )  # fmt: skip

    def run(self, case: Case, timeout: float) -> Outcome:
        assert self.proc.stdin and self.proc.stdout
        start = time.perf_counter()
        try:
            self.proc.stdin.write(case.id + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return Outcome("crash", "the worker was gone before the case started")
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
        sel.close()
        if not ready:
            self.kill()
            return Outcome("hang", f"no answer within {timeout:.0f} s", seconds=timeout)
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            return Outcome("crash", f"the process ended with status {code}", seconds=time.perf_counter() - start)
        data = json.loads(line)
        data.pop("id")
        return Outcome(**data)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.alive():
            assert self.proc.stdin
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def run_cases(
    cases: Sequence[Case], scratch: Path, timeout: float = CASE_TIMEOUT, progress: bool = False, source: str = "", workers: int = 2
) -> list[Judgement]:
    """Judge every case, in ``workers`` worker processes; a worker is replaced after a crash or a
    hang. ``source`` (``module:function``) is where workers find the cases when they are not the
    corpus's. Judgements come back in the order of ``cases``."""
    scratch.mkdir(parents=True, exist_ok=True)
    out: dict[int, Judgement] = {}
    todo = list(enumerate(cases))
    lock = threading.Lock()

    def drive() -> None:
        w = _Worker(scratch, source)
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    i, case = todo.pop(0)
                if not w.alive():
                    w = _Worker(scratch, source)
                outcome = w.run(case, timeout)
                with lock:
                    out[i] = judge(case, outcome)
                    if progress:
                        print(f"[{len(out)}/{len(cases)}] {out[i].verdict:9s} {outcome.seconds:6.2f}s {case.id}", file=sys.stderr)
        finally:
            w.close()

    threads = [threading.Thread(target=drive) for _ in range(max(1, min(workers, len(cases))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [out[i] for i in range(len(cases))]


def summary_table(judgements: Iterable[Judgement]) -> str:
    """A Markdown table: per category, the number of cases and of each verdict, and what happens."""
    by_cat: dict[str, list[Judgement]] = collections.defaultdict(list)
    for j in judgements:
        by_cat[j.case.category].append(j)
    from fuzz.cases_cli import DESCRIPTIONS as D1
    from fuzz.cases_models import DESCRIPTIONS as D2
    from fuzz.cases_probes import DESCRIPTIONS as D3
    from fuzz.cases_tables import DESCRIPTIONS as D4

    what = {**D1, **D2, **D3, **D4}
    rows = ["| input class | cases | clear error | warning | accepted (valid input) | failures | what happens |", "|---|---:|---:|---:|---:|---:|---|"]
    for cat, js in by_cat.items():
        kinds = collections.Counter(j.outcome.kind for j in js if j.verdict == "pass")
        fails = sum(j.verdict != "pass" for j in js)
        rows.append(f"| {cat} | {len(js)} | {kinds['error']} | {kinds['warned']} | {kinds['ok']} | {fails} | {what.get(cat, '')} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose id contains this text")
    parser.add_argument("--markdown", action="store_true", help="print the summary table")
    parser.add_argument("--scratch", default="")
    args = parser.parse_args(argv)
    import tempfile

    cases = [c for c in all_cases() if args.only in c.id]
    with tempfile.TemporaryDirectory() as tmp:
        judgements = run_cases(cases, Path(args.scratch or tmp), progress=True)
    for j in judgements:
        if j.verdict != "pass":
            print(f"FAIL {j.verdict}: {j.case.id}: {j.why}")
    if args.markdown:
        print(summary_table(judgements))
    return int(any(j.verdict != "pass" for j in judgements))


if __name__ == "__main__":
    sys.exit(main())
