"""Tables a user supplies: measured-transfer CSVs (task and layer ground truth) and score files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from fuzz.corpus import Case
from fuzz.entry import cli

DESCRIPTIONS = {
    "ground-truth": "measured-transfer CSVs with missing columns, non-numbers, NaN/Inf, conflicting duplicates, constant targets or unknown names: an error naming the rows; never NaN in the output",
    "layer-truth": "layer ground-truth CSVs with the same defects: an error",
    "scores": "score files for the evaluate command with NaN, missing or unknown entries: an error",
}

NAMES = ("a", "b", "c", "d", "e")


def _rows(value=lambda s, t: (ord(s) * 7 + ord(t) * 3) % 11 / 10) -> list[tuple[str, str, object]]:
    return [(s, t, value(s, t)) for s in NAMES for t in NAMES if s != t]


def _csv(rows, header: str = "source,target,affinity") -> bytes:
    return (header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n").encode()


def _gt(data: bytes, names=NAMES):
    def run(scratch: Path):
        from depara_core.evaluation.ground_truth import GroundTruth
        from depara_core.evaluation.ranking import RankingEvaluator

        gt = GroundTruth.from_csv(data, name="up")
        ev = RankingEvaluator(names, gt, relevant=2)
        m = ev.metrics(np.random.default_rng(0).random((len(names), len(names))), "x", full=True)
        summary = json.dumps(m.summary())
        if "NaN" in summary:
            from fuzz.corpus import Wrong

            raise Wrong(f"NaN in the metrics: {summary[:200]}")
        return m

    return run


def _gt_cases() -> list[Case]:
    c = "ground-truth"
    rows = _rows()
    out = [
        Case(c, "valid", _gt(_csv(rows)), "ok"),
        Case(c, "valid-with-bom-and-spaces", _gt(b"\xef\xbb\xbf" + _csv([(f" {s}", f"{t} ", v) for s, t, v in rows])), "ok"),
        Case(c, "valid-negative-values", _gt(_csv([(s, t, -v) for s, t, v in rows])), "ok"),
        Case(c, "valid-equal-duplicates", _gt(_csv(rows + rows[:3])), "ok"),
        Case(c, "valid-extra-names", _gt(_csv(rows + [("zz", "a", 0.3), ("a", "zz", 0.2)])), "ok"),
        Case(c, "valid-extra-columns", _gt(_csv([(*r, "note") for r in rows], "source,target,affinity,comment")), "ok"),
        Case(c, "empty", _gt(b""), match="cannot be read"),
        Case(c, "header-only", _gt(b"source,target,affinity\n"), match="covers none|no target"),
        Case(c, "binary", _gt(os.urandom(2000)), match="cannot be read|lacks column"),
        Case(c, "latin-1", _gt(_csv(rows).replace(b"a,", b"\xe9,")), match="cannot be read|covers none|lacks"),
        Case(c, "missing-column", _gt(_csv([(s, t) for s, t, _ in rows], "source,target")), match="lacks column"),
        Case(c, "renamed-column", _gt(_csv(rows, "src,tgt,affinity")), match="lacks column"),
        Case(c, "semicolons", _gt(_csv(rows).replace(b",", b";")), match="lacks column"),
        Case(c, "one-row", _gt(_csv(rows[:1])), match="covers none|relevant|no target"),
        Case(c, "unknown-names", _gt(_csv([(s.upper(), t.upper(), v) for s, t, v in rows])), match="covers none"),
        Case(c, "conflicting-duplicates", _gt(_csv(rows + [(rows[0][0], rows[0][1], 99)])), match="different values"),
        Case(c, "constant-target", _gt(_csv([(s, t, 0.5 if t == "a" else v) for s, t, v in rows])), match="same value"),
        Case(c, "all-constant", _gt(_csv([(s, t, 1) for s, t, _ in rows])), match="same value"),
        Case(c, "two-sources-only", _gt(_csv([r for r in rows if r[0] in "ab"]), NAMES), "ok"),
        Case(c, "formula-names", _gt(_csv([("=cmd()", "a", 0.1), *rows])), "ok"),
        Case(c, "quoted-names-with-commas", _gt(_csv([('"a,b"', "a", 0.1), *rows])), "ok"),
    ]
    for label, bad in (("nan", "nan"), ("NaN-text", "NaN"), ("inf", "inf"), ("minus-inf", "-inf"), ("huge", "1e400"), ("word", "high"), ("blank", ""), ("percent", "50%")):
        out.append(Case(c, f"value-{label}", _gt(_csv([(rows[0][0], rows[0][1], bad), *rows[1:]])), match="not finite numbers"))
    return out


def _layer(data: bytes):
    def run(scratch: Path):
        from depara_core.evaluation.layers import LayerTruth

        lt = LayerTruth.from_csv(data, name="up")
        series = lt.series("a", "b", ["l1", "l2", "l3"])
        if series is not None and not np.isfinite(series).all():
            from fuzz.corpus import Wrong

            raise Wrong(f"non-finite values kept: {series}")
        return lt

    return run


def _layer_cases() -> list[Case]:
    c = "layer-truth"
    good = [("a", "b", f"l{i}", v) for i, v in ((1, 0.2), (2, 0.5), (3, 0.4))]
    h = "source,target,layer,value"
    out = [
        Case(c, "valid", _layer(_csv(good, h)), "ok"),
        Case(c, "valid-loss", _layer(_csv(good, "source,target,layer,loss")), "ok"),
        Case(c, "valid-seeds-averaged", _layer(_csv(good + good, h)), "ok"),
        Case(c, "empty", _layer(b""), match="not a readable CSV"),
        Case(c, "binary", _layer(os.urandom(1000)), match="not a readable CSV|columns"),
        Case(c, "missing-layer-column", _layer(_csv([g[:2] + g[3:] for g in good], "source,target,value")), match="columns"),
        Case(c, "two-value-columns", _layer(_csv([(*g, 1) for g in good], h + ",other")), "ok"),
        Case(c, "no-numbers", _layer(_csv([(*g[:3], "x") for g in good], h)), match="no numbers"),
    ]
    for label, bad in (("nan", "nan"), ("inf", "inf"), ("word", "high"), ("blank", "")):
        out.append(Case(c, f"value-{label}", _layer(_csv([(*good[0][:3], bad), *good[1:]], h)), match="not finite|numbers"))
    return out


def _scores(write):
    def run(scratch: Path):
        gt = scratch / "gt.csv"
        gt.write_bytes(_csv(_rows()))
        scores = scratch / "scores.csv"
        write(scores)
        return cli("evaluate", "--ground-truth", str(gt), "--scores", str(scores), "--relevant", "2", "--json", str(scratch / "out.json"))

    return run


def _score_cases() -> list[Case]:
    c = "scores"
    rows = [(s, t, 0.1 * i) for i, (s, t, _) in enumerate(_rows())]
    hdr = "source,target,score"

    def csv_of(rs, header=hdr):
        return lambda p: p.write_bytes(_csv(rs, header))

    def similarity_json(change):
        def write(p):
            p = p.with_suffix(".json")
            m = np.random.default_rng(1).random((5, 5))
            data = {"models": list(NAMES), "s_V": m.tolist(), "s_E": m.tolist()}
            change(data)
            p.write_text(json.dumps(data))
        return write

    def json_run(change):
        def run(scratch: Path):
            gt = scratch / "gt.csv"
            gt.write_bytes(_csv(_rows()))
            similarity_json(change)(scratch / "s.json")
            return cli("evaluate", "--ground-truth", str(gt), "--scores", str(scratch / "s.json"), "--relevant", "2", "--json", str(scratch / "out.json"))
        return run

    return [
        Case(c, "valid", _scores(csv_of(rows)), "ok"),
        Case(c, "nan-score", _scores(csv_of([(rows[0][0], rows[0][1], "nan"), *rows[1:]])), match="not finite|NaN"),
        Case(c, "inf-score", _scores(csv_of([(rows[0][0], rows[0][1], "inf"), *rows[1:]])), match="not finite|infinite"),
        Case(c, "word-score", _scores(csv_of([(rows[0][0], rows[0][1], "good"), *rows[1:]])), match="not finite|number"),
        Case(c, "missing-score-column", _scores(csv_of([r[:2] for r in rows], "source,target")), match="column"),
        Case(c, "unknown-targets", _scores(csv_of([(s, t.upper(), v) for s, t, v in rows])), match="no target"),
        Case(c, "missing-sources", _scores(csv_of([r for r in rows if r[0] != "a"])), match="no predicted score"),
        Case(c, "empty-file", _scores(lambda p: p.write_bytes(b"")), match="cannot be read|empty"),
        Case(c, "missing-file", lambda s: cli("evaluate", "--ground-truth", "taskonomy", "--scores", str(s / "nope.csv"), "--json", str(s / "o.json")), match="does not exist|cannot be read"),
        Case(c, "json-valid", json_run(lambda d: None), "ok"),
        Case(c, "json-nan", json_run(lambda d: d["s_V"][0].__setitem__(1, float("nan"))), match="not finite|NaN"),
        Case(c, "json-wrong-shape", json_run(lambda d: d.__setitem__("s_V", [[1.0]])), match="shape|models"),
        Case(c, "json-missing-key", json_run(lambda d: d.pop("s_E")), match="s_E"),
        Case(c, "json-garbage", _scores(lambda p: p.with_suffix(".json").write_text("{not json")), match="cannot be read|JSON|does not exist"),
        Case(c, "gt-missing", lambda s: cli("evaluate", "--ground-truth", str(s / "none.csv"), "--scores", str(s / "x.csv"), "--json", str(s / "o.json")), match="cannot be read|does not exist"),
    ]


def cases() -> list:
    return _gt_cases() + _layer_cases() + _score_cases()
