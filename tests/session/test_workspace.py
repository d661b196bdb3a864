"""The app's service layer: choices, computing with progress/cancellation/resumption, concurrency,
uploads and paths, fast ranking metrics, λ suggestion, layer ground truth and the views."""

from __future__ import annotations

import dataclasses
import io
import threading
import zipfile

import numpy as np
import pandas as pd
import pytest
from conftest import random_probes, tiny_spec
from PIL import Image
from scipy.stats import spearmanr

from depara_core.cache import GraphCache
from depara_core.compare.terms import SimilarityTerms
from depara_core.engine.graph import Cancelled
from depara_core.errors import DeparaError, ModelError, ProbeError
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.lambda_cv import suggest_lambda
from depara_core.evaluation.layers import LayerTruth, layer_agreement
from depara_core.evaluation.methods import evaluate_methods
from depara_core.evaluation.ranking import RankingEvaluator, evaluate, ground_truth_for
from depara_core.models.preprocess import Preprocess
from depara_core.models.spec import load_model
from depara_core.session.config import Config, CustomModel, ProbeChoice, resolve_specs
from depara_core.session.uploads import probes_from_upload, save_upload
from depara_core.session.workspace import Workspace, demo_workspace, prune_workspaces, terms_digest
from depara_core.session.zoos import default_zoo, zoo_probe_default
from depara_core.viz import views
from depara_core.zoos import Zoo

NAMES = ("m0", "m1", "m2", "m3")


def _config(mode: str = "encoder", names=NAMES) -> Config:
    return Config("", tuple(names), ProbeChoice("builtin", "rand", 7), layer_mode=mode)


@pytest.fixture
def models():
    return [load_model(tiny_spec(n, seed=i)) for i, n in enumerate(NAMES)]


def _png(color: int, size: int = 20) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (color, 255 - color, 40)).save(buf, format="PNG")
    return buf.getvalue()


# ---- zoos and choices ----------------------------------------------------------------------
def test_default_zoo_prefers_mini_taskonomy_and_falls_back():
    a = Zoo("efficientnet-lite", "", ())
    off = Zoo("mini-taskonomy", "", (), available=False, unavailable_reason="not built")
    assert default_zoo({"efficientnet-lite": a, "mini-taskonomy": off}) == "efficientnet-lite"
    assert default_zoo({"efficientnet-lite": a, "mini-taskonomy": dataclasses.replace(off, available=True)}) == "mini-taskonomy"
    assert default_zoo({"x": off}) == ""
    assert zoo_probe_default(dataclasses.replace(a, default_probes=("photos", 16))) == ("photos", 16)
    assert zoo_probe_default(None)[0] == "photos"


def test_resolve_specs_names_and_errors():
    zoo = Zoo("z", "", (tiny_spec("a"), tiny_spec("b", seed=1)))
    custom = CustomModel("callable", "c", "conftest:TinyNet")
    specs = resolve_specs(Config("z", ("b", "c"), ProbeChoice("builtin", "noise"), (custom,)), zoo)
    assert [s.name for s in specs] == ["b", "c"]
    with pytest.raises(DeparaError, match="neither in zoo"):
        resolve_specs(Config("z", ("a", "zz"), ProbeChoice("builtin", "noise")), zoo)
    with pytest.raises(DeparaError, match="at least two"):
        resolve_specs(Config("z", ("a",), ProbeChoice("builtin", "noise")), zoo)


def test_custom_model_errors_are_readable(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(CustomModel("torchscript", "ts", str(tmp_path / "nope.pt")).spec())
    with pytest.raises(ModelError, match="torchvision has no architecture"):
        CustomModel("torchvision", "x", "not_an_arch").spec()
    with pytest.raises(ModelError, match="no name"):
        CustomModel("callable", " ", "m:f").spec()
    assert CustomModel("callable", "a", "m:f").key() != CustomModel("callable", "a", "m:g").key()


def test_models_of_different_input_sizes_compare(models):
    probes = random_probes(5, size=24)
    sized = [dataclasses.replace(m, spec=dataclasses.replace(m.spec, preprocess=Preprocess(size=(s, s), resize=s + 4))) for m, s in zip(models[:2], (16, 20))]
    ws = Workspace(_config(names=("m0", "m1")), sized, probes)
    ws.compute()
    assert ws.terms.s_V.shape == (2, 2) and ws.graph("m1").node_shape[-1] == 20
    grid = views.attribution_grid_view([(m.name, ws.graph(m.name), m.spec.preprocess) for m in sized], probes, [0, 1], size=8)
    assert [t.type for t in grid.data] == ["image"] * 4 + ["heatmap"]  # a picture per cell, and what hovering each says


# ---- computing -----------------------------------------------------------------------------
def test_compute_reports_progress_and_fills_results(models, tmp_path):
    reports = []
    ws = Workspace(_config(), models, random_probes(), GraphCache(tmp_path))
    assert set(ws.missing()) == set(NAMES) and not ws.complete
    ws.compute(lambda r: reports.append(r))
    assert ws.complete and ws.terms.names == NAMES
    fractions = [r.fraction for r in reports]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert {r.model for r in reports} == set(NAMES) and "model 1/4" in reports[0].text
    assert ws.missing() == {}
    assert len(ws.graph_key("m0")) == 64


def test_stop_keeps_finished_graphs_and_resumes_from_cache(models, tmp_path):
    cache = GraphCache(tmp_path)
    ws = Workspace(_config(), models, random_probes(), cache)
    seen = []

    def stop_in_third(r):
        seen.append(r.model)
        return r.model_index < 2

    with pytest.raises(Cancelled):
        ws.compute(stop_in_third)
    assert set(ws.graphs) == {"m0", "m1"} and ws.terms is None
    fresh = Workspace(_config(), models, random_probes(), cache)
    assert set(fresh.missing()) == {"m2", "m3"}  # the others come from disk
    computed = []
    fresh.compute(lambda r: computed.append(r.model) if "probes" in r.detail else None)
    assert set(computed) == {"m2", "m3"} and fresh.complete


def test_two_sessions_computing_at_once_agree(tmp_path):
    """Shared (cached) models and one disk cache, two threads: same results as alone, no errors."""
    shared = [load_model(tiny_spec(n, seed=i)) for i, n in enumerate(NAMES)]
    alone = Workspace(_config(), shared, random_probes())
    alone.compute()
    cache = GraphCache(tmp_path)
    out, errors = {}, []

    def session(k: int) -> None:
        try:
            ws = Workspace(_config(), shared if k == 0 else shared[::-1], random_probes(), cache)
            ws.compute()
            out[k] = ws.terms
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    order = [out[1].names.index(n) for n in NAMES]
    np.testing.assert_allclose(out[0].s_V, alone.terms.s_V, atol=1e-6)
    np.testing.assert_allclose(out[1].s_E[np.ix_(order, order)], alone.terms.s_E, atol=1e-6)
    assert not list(tmp_path.rglob("*.tmp"))


def test_layer_scores_and_all_layers(models, tmp_path):
    ws = Workspace(_config("all"), models, random_probes())
    assert ws.layers_of("m0") == ["conv1", "relu1", "conv2", "act2", "fc"]
    scores = ws.compute_layer_scores("m0", "m1")
    assert scores.layers == tuple(ws.layers_of("m0")) and ws.layer_results[("m0", "m1")] is scores
    assert ws.computed_layers("m0") == [] and "m0" not in ws.graphs  # streamed, nothing held without a cache
    cached = Workspace(_config("all"), models, random_probes(), cache=GraphCache(tmp_path))
    again = cached.compute_layer_scores("m0", "m1")
    np.testing.assert_allclose(again.s_E, scores.s_E, atol=1e-6)
    assert cached.computed_layers("m0") == list(scores.layers) and "m0" not in cached.graphs  # on disk, read back on demand
    assert cached.graph("m0", "conv2").layer == "conv2" and len(cached._held) == 1
    with pytest.raises(DeparaError, match="same model"):
        ws.compute_layer_scores("m0", "m0")
    with pytest.raises(DeparaError, match="not been computed"):
        ws.graph("m2", "conv1")


def test_several_targets_at_once_compute_the_source_once_and_match_one_at_a_time(models, tmp_path):
    cache = GraphCache(tmp_path)
    ws = Workspace(_config("all"), models, random_probes(), cache=cache)
    reports = []
    both = ws.compute_layer_targets("m0", ["m1", "m2"], reports.append)
    assert list(both) == ["m1", "m2"] and ws.layer_results[("m0", "m2")] is both["m2"]
    assert [r.fraction for r in reports] == sorted(r.fraction for r in reports) and reports[-1].fraction == 1.0  # one bar for all targets
    assert {r.model for r in reports} == {"m0 vs m1", "m0 vs m2"}
    for target in ("m1", "m2"):
        alone = Workspace(_config("all"), models, random_probes()).compute_layer_scores("m0", target)  # no cache: computed afresh
        np.testing.assert_allclose(both[target].s_V, alone.s_V, atol=1e-6)
        np.testing.assert_allclose(both[target].s_E, alone.s_E, atol=1e-6)
    with pytest.raises(DeparaError, match="same model"):
        ws.compute_layer_targets("m0", ["m1", "m0"])
    uncached, reports = Workspace(_config("all"), models, random_probes()), []
    uncached.compute_layer_targets("m0", ["m1", "m2"], reports.append)  # no disk cache: each target recomputes, and counts
    halfway = [r.fraction for r in reports if r.model == "m0 vs m2"]
    assert halfway and halfway[0] == pytest.approx(0.5) and reports[-1].fraction == 1.0


# ---- uploads and paths ---------------------------------------------------------------------
def test_probes_from_upload_images_zip_and_failures():
    files = [(f"p{i}.png", _png(i * 60)) for i in range(4)]
    ps = probes_from_upload(files, size=16, name="mine")
    assert len(ps) == 4 and ps.size == (16, 16) and ps.name == "mine"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, b in files:
            zf.writestr(f"set/{n}", b)
    assert len(probes_from_upload([("set.zip", buf.getvalue())], size=16)) == 4
    with pytest.raises(ProbeError, match="not a readable image"):
        probes_from_upload([*files, ("broken.png", b"not an image")], size=16)
    with pytest.raises(ProbeError, match="not an image or zip"):
        probes_from_upload([*files, ("notes.txt", b"hello")], size=16)
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../etc/x.png", files[0][1])
    with pytest.raises(ProbeError, match="outside the archive"):
        probes_from_upload([("evil.zip", evil.getvalue())])
    with pytest.raises(ProbeError, match="no files"):
        probes_from_upload([])


def test_save_upload_is_content_addressed(tmp_path):
    a = save_upload(b"abc", ".PTH", tmp_path)
    assert a == save_upload(b"abc", ".pth", tmp_path) and a.read_bytes() == b"abc" and a.suffix == ".pth"
    assert save_upload(b"abd", ".pth", tmp_path) != a
    assert save_upload(b"x", "/../../evil", tmp_path).parent == tmp_path / "uploads"


# ---- metrics, λ and layer truth ------------------------------------------------------------
def _terms(n: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    names = tuple(f"t{i}" for i in range(n))
    sv, se = rng.random((n, n)), rng.random((n, n))
    return SimilarityTerms(names, sv, se, rng.random((n, n)), rng.random((n, n)))


def test_fast_metrics_match_the_reference():
    terms = _terms()
    aff = np.random.default_rng(1).random((8, 8))
    aff[2, 5] = np.nan
    gt = GroundTruth.from_matrix(terms.names, aff)
    ref = evaluate(terms.score_table(0.7), gt, relevant=3)
    fast = RankingEvaluator(terms.names, gt, 3).metrics(terms.combined(0.7), "DEPARA")
    np.testing.assert_allclose(fast.precision, ref.precision)
    np.testing.assert_allclose(fast.recall, ref.recall)
    assert fast.spearman == pytest.approx(ref.spearman)


def test_evaluate_methods_and_suggested_lambda():
    terms = _terms()
    truth = terms.s_V + 2.0 * terms.s_E  # transfer that DEPARA reproduces exactly at λ = 2
    gt = GroundTruth.from_matrix(terms.names, truth)
    ev = evaluate_methods(terms, gt, 2.0, relevant=3)
    assert list(ev.summary["method"]) == ["DEPARA (λ=2)", "DEPARA-V", "DEPARA-E", "RSA", "CKA", "random", "oracle"]
    assert ev.summary.iloc[0]["spearman"] == pytest.approx(1.0) and ev.summary.iloc[-1]["P@3"] == 1.0
    assert set(ev.pr_points()) == set(ev.summary["method"])
    live = evaluate_methods(terms, gt, 1.0, relevant=3, methods=("DEPARA",), baselines=False)
    assert list(live.summary["method"]) == ["DEPARA (λ=1)"] and set(live.curves["method"]) == {"DEPARA (λ=1)"}
    sug = suggest_lambda(terms, gt, relevant=3)
    assert sug.lam == 2.0 and sug.cv_score == pytest.approx(1.0) and len(sug.folds) == 8 and "λ = 2" in sug.text
    with pytest.raises(DeparaError, match="covers none"):
        ground_truth_for(("x", "y"), gt)
    with pytest.raises(DeparaError, match="relevant"):
        RankingEvaluator(terms.names, gt, 99)


def test_layer_truth_csv_and_agreement(models):
    csv = b"source,target,layer,accuracy\nm0,m1,conv1,0.1\nm0,m1,relu1,0.2\nm0,m1,conv2,0.5\nm0,m1,act2,0.6\n"
    truth = LayerTruth.from_csv(csv)
    assert truth.name == "accuracy"
    ws = Workspace(_config(), models, random_probes())
    scores = ws.compute_layer_scores("m0", "m1")
    measured = truth.series("m0", "m1", scores.layers)
    assert np.isnan(measured[-1]) and measured[0] == 0.1 and truth.series("m1", "m0", scores.layers) is None
    rho = layer_agreement(scores, 1.0, measured)
    ok = np.isfinite(measured)
    assert rho == pytest.approx(spearmanr(scores.combined(1.0)[ok], measured[ok]).statistic)
    fig, table = views.layer_view(scores, 1.0, measured=measured)
    assert "accuracy" not in table.columns and "measured transfer" in table.columns and table["recommended"].sum() == 1
    loss = LayerTruth.from_frame(pd.DataFrame({"source": ["a", "a"], "target": ["b", "b"], "layer": ["x", "x"], "seed": [0, 1], "loss": [1.0, 3.0]}))
    assert loss.series("a", "b", ["x"])[0] == -2.0 and loss.name == "−loss"
    with pytest.raises(DeparaError, match="columns"):
        LayerTruth.from_csv(b"a,b\n1,2\n")
    with pytest.raises(DeparaError, match="holds no numbers"):
        LayerTruth.from_csv(b"source,target,layer,value\na,b,c,x\n")


# ---- views ---------------------------------------------------------------------------------
def test_views_from_a_workspace(models):
    probes = random_probes(6, size=12)
    ws = Workspace(_config(), models, probes)
    ws.compute()
    tv = views.task_view(ws.terms, 0.5)
    assert list(tv.matrix_fig.data[0].x) == tv.tree.ordered_labels
    assert tv.matrix_fig.data[0].zmax < tv.matrix.max()  # the diagonal saturates
    fig, table = views.ranking_view(ws.terms, "m1", 0.5)
    assert list(table["source"]) == [n for n, _ in ws.terms.rank_sources("m1", 0.5)]
    cols = [(n, ws.graph(n), ws.model(n).spec.preprocess) for n in NAMES[:2]]
    grid = views.attribution_grid_view(cols, probes, [0, 3], size=8)
    assert [t.type for t in grid.data] == ["image"] * 4 + ["heatmap"]  # a picture per cell, and what hovering each says
    nodes = views.node_agreement(ws.graph("m0"), ws.graph("m1"), probes)
    assert nodes["node cosine"].is_monotonic_decreasing and nodes["image"].iloc[0].startswith("data:image/png;base64,")
    a, b, s_e = views.edge_pair_view(ws.graph("m0"), ws.graph("m1"))
    assert s_e == pytest.approx(ws.terms.s_E[0, 1]) and list(a.data[0].x) == list(b.data[0].x)
    pairs = views.edge_disagreement(ws.graph("m0"), ws.graph("m1"), probes, top=4)
    assert len(pairs) == 4 and pairs["rank difference"].abs().is_monotonic_decreasing
    assert views.network_view(np.zeros((30, 40, 3), np.uint8), Preprocess(size=(16, 16))).shape == (16, 16, 3)
    assert terms_digest(ws.terms) == terms_digest(dataclasses.replace(ws.terms)) != terms_digest(_terms())
    assert isinstance(table, pd.DataFrame)


def test_pruning_keeps_results_and_the_current_choice_and_drops_bare_views_first():
    done = demo_workspace()
    configs = [Config("", (f"m{i}",), ProbeChoice("builtin", "noise", 4)) for i in range(6)]
    spaces = {c: (done if i in (0, 1, 3) else Workspace(c, [], done.probes)) for i, c in enumerate(configs)}  # oldest first
    prune_workspaces(spaces, 4, keep=configs[5])
    assert list(spaces) == [configs[0], configs[1], configs[3], configs[5]]  # the two without terms went first
    prune_workspaces(spaces, 2, keep=configs[0])
    assert list(spaces) == [configs[0], configs[3]]  # then the least recently used, never the kept one
    prune_workspaces(spaces, 0, keep=configs[3])
    assert list(spaces) == [configs[3]]
