"""The export bundle: a compact summary, every figure and table, the tree as Newick, settings that reopen."""

from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pandas as pd
import pytest
from conftest import random_probes, tiny_spec
from scipy.cluster.hierarchy import to_tree

from depara_core.errors import DeparaError
from depara_core.models.spec import load_model
from depara_core.session.bundle import build_bundle, read_settings
from depara_core.session.config import Config, ProbeChoice
from depara_core.session.link import LinkChoices, read_link
from depara_core.session.report import static_export_available
from depara_core.session.workspace import Workspace

NAMES = ("model-alpha", "model-beta", "model-gamma-long-name", "m'3")
LINK = {"zoo": "tiny", "models": ",".join(NAMES), "lam": "0.5", "target": NAMES[1]}


@pytest.fixture(scope="module")
def ws():
    models = [load_model(tiny_spec(n, seed=i)) for i, n in enumerate(NAMES)]
    w = Workspace(Config("tiny", NAMES, ProbeChoice("builtin", "rand", 7)), models, random_probes())
    w.compute()
    w.compute_layer_scores(NAMES[0], NAMES[1])
    return w


def _open(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def test_tables_tree_and_settings_without_static_export(ws):
    z = _open(build_bundle(ws, 0.5, target=NAMES[1], link=LINK, static=False))
    names = set(z.namelist())
    assert {"summary.html", "report.html", "task_tree.nwk", "settings.json", "README.txt"} <= names
    s_v = pd.read_csv(z.open("tables/s-v--rows--source--columns--target.csv")).set_index("source")
    np.testing.assert_allclose(s_v.loc[list(NAMES), list(NAMES)].to_numpy(), ws.terms.s_V, rtol=1e-6)
    assert any(n.startswith("tables/layers-of-model-alpha") for n in names)
    assert any(n.startswith("figures/") and n.endswith(".json") for n in names)  # plotly's JSON when nothing is drawn
    assert "not drawn" in z.read("README.txt").decode()
    # the Newick tree: every model once, n-1 internal nodes, non-negative lengths, quoted odd labels
    nwk = z.read("task_tree.nwk").decode().strip()
    assert nwk.endswith(";") and nwk.count("(") == len(NAMES) - 1 == nwk.count(")")
    assert all(float(x) >= 0 for x in re.findall(r":([0-9.e+-]+)", nwk))
    assert "'m''3'" in nwk and all(n in nwk for n in NAMES[:3])
    from depara_core.compare.tree import task_tree

    # every root-to-leaf path is as long as the root's merge height (lengths are height differences)
    tree = task_tree(ws.terms.combined(0.5), ws.terms.names)
    depths = _leaf_depths(nwk)
    assert sorted(depths) == sorted(NAMES) and all(d == pytest.approx(to_tree(tree.linkage).dist, abs=1e-5) for d in depths.values())
    # the settings reopen as a link, checked like any other
    link = read_settings(z.read("settings.json"))
    assert link == LINK and read_settings(build_bundle(ws, 0.5, link=LINK, static=False)) == LINK
    updates, notes = read_link(link, LinkChoices({"tiny": NAMES}, ("rand",), ("gradient_x_input",)))
    assert notes == [] and updates["models"] == list(NAMES) and updates["lam"] == 0.5


def _leaf_depths(nwk: str) -> dict[str, float]:
    """Root-to-leaf path lengths of a Newick string (a small reader, for this test)."""
    tokens = re.findall(r"\(|\)|,|:[0-9.e+-]+|'(?:[^']|'')*'|[^():,;']+", nwk.rstrip(";"))
    root: dict = {"children": [], "length": 0.0}
    stack, last = [root], None
    for tok in tokens:
        if tok == "(":
            node = {"children": [], "length": 0.0}
            stack[-1]["children"].append(node)
            stack.append(node)
        elif tok == ")":
            last = stack.pop()
        elif tok.startswith(":"):
            last["length"] = float(tok[1:])
        elif tok != ",":
            last = {"label": tok[1:-1].replace("''", "'") if tok.startswith("'") else tok, "length": 0.0}
            stack[-1]["children"].append(last)
    out: dict[str, float] = {}

    def walk(node: dict, depth: float) -> None:
        if "label" in node:
            out[node["label"]] = depth + node["length"]
        for c in node.get("children", []):
            walk(c, depth + node["length"] if node is not root else 0.0)

    walk(root["children"][0], 0.0)
    return out


@pytest.mark.skipif(not static_export_available(), reason="static export needs kaleido and Chrome/Chromium")
def test_summary_is_small_and_static_with_full_labels(ws):
    data = build_bundle(ws, 0.5, target=NAMES[1], link=LINK, static=True)
    z = _open(data)
    summary = z.read("summary.html").decode()
    assert "plotly.min.js" not in summary and "Plotly.newPlot" not in summary and len(summary) < 2_000_000
    svgs = [n for n in z.namelist() if n.endswith(".svg")]
    pngs = [n for n in z.namelist() if n.endswith(".png")]
    assert len(svgs) == len(pngs) >= 5
    tree_svg = z.read("figures/task-tree.svg").decode()
    assert all(name.replace("'", "&#39;") in tree_svg or name in tree_svg for name in NAMES)  # whole labels, not clipped ends
    assert summary.count("<img class='svg'") >= 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b"PK\x03\x04garbage", "zip without settings.json"),
        (json.dumps({"format": 99, "link": {}}).encode(), "not of this app's format"),
        (json.dumps({"format": 1, "link": {"lam": 1}}).encode(), "holds no view"),
        (json.dumps([1, 2]).encode(), "not of this app's format"),
    ],
)
def test_bad_settings_files_are_refused_plainly(data, message):
    with pytest.raises(DeparaError, match=message):
        read_settings(data)


def test_summary_shows_the_method_chosen_for_presenting(ws):
    def summary(method: str) -> str:
        return _open(build_bundle(ws, 0.5, target=NAMES[1], static=False, method=method)).read("summary.html").decode()

    depara, rsa = summary("DEPARA"), summary("RSA")
    assert depara != rsa
    assert '"text":"RSA (rows: source' in rsa and '"text":"RSA' not in depara  # the matrix's title


@pytest.mark.skipif(not static_export_available(), reason="static export needs kaleido and Chrome/Chromium")
def test_the_static_summary_draws_the_slides_themselves(ws):
    """Pictures of the presented figures: the chosen method's matrix (not the report's DEPARA one)
    and the attribution maps chosen for showing."""
    import base64

    from depara_core.session.slides import MapsShown

    maps = MapsShown((NAMES[2], NAMES[0], "not-a-model"), (3, 1, 99))
    summary = _open(build_bundle(ws, 0.5, target=NAMES[1], static=True, method="RSA", maps=maps)).read("summary.html").decode()
    pictures = dict(re.findall(r"<img class='svg' alt='([^']+)' src='data:image/svg\+xml;base64,([^']+)'>", summary))
    assert "Plotly.newPlot" not in summary and {"similarity matrix", "attribution maps of 2 probes"} <= set(pictures)
    assert "RSA (rows: source" in base64.b64decode(pictures["similarity matrix"]).decode()
    attribution = base64.b64decode(pictures["attribution maps of 2 probes"]).decode()
    assert NAMES[2] in attribution and "not-a-model" not in attribution
