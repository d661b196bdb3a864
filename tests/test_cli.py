"""The command line, including the exact ``similarity`` form that outside tools call."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from depara_core.cli import main
from depara_core.compare.workflows import zoo_terms
from depara_core.models.sources import callable_spec
from depara_core.models.spec import load_model
from depara_core.probes.probeset import ProbeSet

MODELS = textwrap.dedent(
    """
    import torch

    def _net(seed):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.Conv2d(6, 6, 3, stride=2), torch.nn.Tanh())

    def alpha():
        return _net(0)

    def beta():
        return _net(1)

    def gamma():
        return _net(2)
    """
)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "cli_models.py").write_text(MODELS)
    probes = tmp_path / "probes"
    probes.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(probes / f"p{i}.png")
    return tmp_path


@pytest.mark.slow
def test_similarity_exact_form_writes_paper_default_json(workdir, monkeypatch):
    cmd = [sys.executable, "-m", "depara_core", "similarity"]
    for name in ("alpha", "beta", "gamma"):
        cmd += ["--model", f"{name.upper()}=cli_models:{name}"]
    cmd += ["--probes", "probes", "--layer", "3", "--json", "out.json"]
    env = {**os.environ, "DEPARA_CACHE_DIR": str(workdir / "cache")}
    run = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads((workdir / "out.json").read_text())
    assert set(out) == {"models", "s_V", "s_E"} and out["models"] == ["ALPHA", "BETA", "GAMMA"]
    monkeypatch.syspath_prepend(str(workdir))
    import cli_models

    models = [load_model(callable_spec(n.upper(), getattr(cli_models, n))) for n in ("alpha", "beta", "gamma")]
    terms = zoo_terms(models, ProbeSet.from_folder(workdir / "probes"), layers={m.name: "3" for m in models}, baselines=False)
    np.testing.assert_allclose(out["s_V"], terms.s_V, atol=1e-9)
    np.testing.assert_allclose(out["s_E"], terms.s_E, atol=1e-9)


@pytest.fixture
def in_workdir(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(workdir))
    monkeypatch.setenv("DEPARA_CACHE_DIR", str(workdir / "cache"))
    return workdir


def test_layers_graphs_and_evaluate_commands(in_workdir, capsys):
    assert main(["layers", "--source", "a=cli_models:alpha", "--target", "b=cli_models:beta", "--probes", "probes", "--json", "layers.json", "--quiet"]) == 0
    result = json.loads((in_workdir / "layers.json").read_text())
    s = [row["s"] for row in result["layers"]]
    assert result["best"] == result["layers"][int(np.argmax(s))]["layer"]
    # ranked by a baseline: every baseline's per-layer score is written; the best is that score's argmax
    assert main(["layers", "--source", "a=cli_models:alpha", "--target", "b=cli_models:beta", "--probes", "probes", "--json", "by.json", "--rank-by", "CKA", "--quiet"]) == 0
    by = json.loads((in_workdir / "by.json").read_text())
    cka = [row["CKA"] for row in by["layers"]]
    assert by["rank_by"] == "CKA" and by["best"] == by["layers"][int(np.argmax(cka))]["layer"] and "PL-LogME" in by["layers"][0]
    assert main(["graphs", "--model", "a=cli_models:alpha", "--probes", "probes", "--layers", "0", "2", "--csv", "g.csv", "--quiet"]) == 0
    assert list(pd.read_csv(in_workdir / "g.csv")["layer"].astype(str)) == ["0", "2"]
    assert main(["similarity", "--model", "A=cli_models:alpha", "--model", "B=cli_models:beta", "--model", "C=cli_models:gamma",
                 "--probes", "probes", "--layer", "3", "--json", "sim.json", "--quiet"]) == 0  # fmt: skip
    gt = pd.DataFrame([(s, t, float(i + j)) for i, s in enumerate("ABC") for j, t in enumerate("ABC") if s != t], columns=["source", "target", "affinity"])
    gt.to_csv(in_workdir / "gt.csv", index=False)
    assert main(["evaluate", "--scores", "sim.json", "--ground-truth", "gt.csv", "--relevant", "1", "--json", "ev.json"]) == 0
    ev = json.loads((in_workdir / "ev.json").read_text())
    assert len(ev["precision_at_k"]) == 2 and ev["random"]["precision_at_k"] == [0.5, 0.5]


def test_baselines_reach_the_json_and_evaluate_reads_each(in_workdir, capsys):
    models = ["--model", "A=cli_models:alpha", "--model", "B=cli_models:beta", "--model", "C=cli_models:gamma"]
    assert main(["similarity", *models, "--probes", "probes", "--layer", "3", "--baselines", "--json", "sim.json", "--quiet"]) == 0
    out = json.loads((in_workdir / "sim.json").read_text())
    assert set(out["baselines"]) == {"DEPARA-E centred", "debiased CKA", "DDS", "PL-LogME", "PL-H-score", "PL-NCE"}
    gt = pd.DataFrame([(s, t, float(3 * i - j)) for i, s in enumerate("ABC") for j, t in enumerate("ABC") if s != t], columns=["source", "target", "affinity"])
    gt.to_csv(in_workdir / "gt.csv", index=False)
    assert main(["evaluate", "--scores", "sim.json", "--ground-truth", "gt.csv", "--relevant", "1", "--method", "PL-LogME", "--json", "ev.json"]) == 0
    ev = json.loads((in_workdir / "ev.json").read_text())
    logme = np.asarray(out["baselines"]["PL-LogME"])
    for row in ev["per_target"]:  # the top predicted source is the one with the highest LogME for that target
        j = "ABC".index(row["target"])
        col = {s: logme[i, j] for i, s in enumerate("ABC") if i != j}
        assert row["top_pred"] == max(col, key=col.get)
    assert ev["method"] == "PL-LogME"
    assert main(["similarity", *models, "--probes", "probes", "--layer", "3", "--json", "plain.json", "--quiet"]) == 0
    code = main(["evaluate", "--scores", "plain.json", "--ground-truth", "gt.csv", "--relevant", "1", "--method", "DDS"])
    err = capsys.readouterr().err
    assert code == 2 and "holds no DDS scores" in err and "--baselines" in err


def test_bad_input_gives_a_message_not_a_traceback(in_workdir, capsys):
    code = main(["similarity", "--model", "a=cli_models:alpha", "--model", "b=cli_models:beta", "--probes", "probes", "--layer", "nope"])
    err = capsys.readouterr().err
    assert code == 2 and "has no layer named 'nope'" in err and "Traceback" not in err
    code = main(["similarity", "--model", "a=cli_models:alpha", "--model", "b=cli_models:beta", "--probes", "missing_dir"])
    assert code == 2 and "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--lam", "nan"], "not a finite number"),
        (["--lam", "-1"], "must be at least 0"),
        (["--node-scale", "nan"], "not a finite number"),
        (["--node-scale", "0"], "must be above 0"),
        (["--count", "0"], "must be at least 3"),
        (["--size", "0", "0"], "must be at least 8"),
        (["--size", "100000", "100000"], "must be at most 4096"),
        (["--batch-size", "0"], "must be at least 1"),
        (["--memory-budget", "lots"], "not a size such as 512MiB"),
        (["--std", "0", "1", "1"], "must be above 0"),
    ],
)
def test_bad_numbers_are_refused_before_any_work(capsys, extra, message):
    with pytest.raises(SystemExit) as exit_:
        main(["similarity", "--model", "a=m:f", "--model", "b=m:g", "--probes", "builtin:noise", *extra])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err


def test_empty_probes_and_the_memory_budget(in_workdir, capsys):
    code = main(["similarity", "--model", "a=cli_models:alpha", "--model", "b=cli_models:beta", "--probes", " "])
    assert code == 2 and "--probes is empty" in capsys.readouterr().err
    args = ["similarity", "--model", "a=cli_models:alpha", "--model", "b=cli_models:beta", "--probes", "probes", "--layer", "3", "--no-cache", "--quiet", "--json"]
    assert main([*args, "tight.json", "--memory-budget", "1MiB"]) == 0 and main([*args, "free.json"]) == 0
    tight, free = (json.loads(Path(f).read_text()) for f in ("tight.json", "free.json"))
    np.testing.assert_allclose(tight["s_E"], free["s_E"], atol=1e-6)


def test_the_memory_plan_is_printed_unless_quiet(in_workdir, capsys):
    args = ["graphs", "--model", "a=cli_models:alpha", "--probes", "probes", "--layers", "3", "--no-cache", "--memory-budget", "64MiB"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert re.search(r"plan for a on \d+ probes: memory budget 64 MiB: 1 layer group\(s\), batch \d+, planned peak \d", err), err
    assert main([*args, "--quiet"]) == 0 and "plan for" not in capsys.readouterr().err


def test_paper_code_preset_and_overrides(in_workdir, capsys):
    """``--preset paper-code`` computes what the library computes with the preset; a single option given
    beside it wins over the preset's."""
    from depara_core.presets import PRESETS

    models = ["--model", "A=cli_models:alpha", "--model", "B=cli_models:beta", "--model", "C=cli_models:gamma"]
    assert main(["similarity", *models, "--probes", "probes", "--layer", "3", "--preset", "paper-code", "--json", "code.json", "--quiet"]) == 0
    out = json.loads(Path("code.json").read_text())
    import cli_models

    preset = PRESETS["paper code"]
    specs = preset.models([callable_spec(n.upper(), getattr(cli_models, n)) for n in ("alpha", "beta", "gamma")])
    loaded = [load_model(s) for s in specs]
    terms = zoo_terms(loaded, ProbeSet.from_folder("probes"), preset.options, layers={m.name: "3" for m in loaded}, node_scale=1e-3, baselines=False)
    np.testing.assert_allclose(out["s_V"], terms.s_V, atol=1e-9)
    np.testing.assert_allclose(out["s_E"], terms.s_E, atol=1e-9)
    assert out["node_scale"] == 1e-3
    assert main(["similarity", *models, "--probes", "probes", "--layer", "3", "--json", "paper.json", "--quiet"]) == 0
    assert not np.allclose(json.loads(Path("paper.json").read_text())["s_V"], out["s_V"], atol=1e-3)  # the conventions matter
    # printed: the preset's weighting, unless λ is given
    assert main(["similarity", *models, "--probes", "probes", "--layer", "3", "--preset", "paper-code", "--quiet"]) == 0
    assert "s = 0.001·s_V + 0.25·s_E" in capsys.readouterr().out
    assert main(["similarity", *models, "--probes", "probes", "--layer", "3", "--preset", "paper-code", "--lam", "2", "--node-scale", "1", "--quiet"]) == 0
    assert "s = 1·s_V + 2·s_E" in capsys.readouterr().out
    # evaluate takes the preset's λ
    gt = pd.DataFrame([{"source": s, "target": t, "affinity": float(i + j)} for i, s in enumerate("ABC") for j, t in enumerate("ABC") if s != t])
    gt.to_csv("gt.csv", index=False)
    assert main(["evaluate", "--scores", "code.json", "--ground-truth", "gt.csv", "--relevant", "1", "--preset", "paper-code", "--json", "ev.json"]) == 0
    assert json.loads(Path("ev.json").read_text())["lambda"] == 0.25


def test_bad_input_clip_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["similarity", "--model", "a=m:f", "--model", "b=m:g", "--probes", "builtin:noise", "--input-clip", "0.2", "1.5"])
    assert "at most 1" in capsys.readouterr().err
