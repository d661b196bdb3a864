"""DEPARA Explorer speed figures.

    python benchmarks/bench_app.py               # λ path, heatmaps, page switches (AppTest)
    python benchmarks/bench_app.py --browser     # also: first run and warm start in a real browser

* λ path: what the Task transferability fragment does when λ moves, for a synthetic 20-model zoo
  with measured transfer (recombine terms, matrix + tree + ranking + live P@K/PR, serialise every
  chart as ``st.plotly_chart`` does). Target: ≤ 150 ms server time.
* heatmaps: a 1000-probe edge heatmap is sent as float32, block-averaged to 500×500.
* page switch: server time of each page with a warm cache (AppTest through app.py). Target: ≤ 1 s.
* browser (optional, needs playwright and /usr/bin/chromium): time from opening the app with an
  empty cache until the matrix and tree are drawn, and the same after a server restart (disk cache).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import plotly.io as pio

ROOT = Path(__file__).resolve().parents[1]

from depara_core.compare.terms import SimilarityTerms
from depara_core.compare.tree import cluster_order
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.methods import evaluate_methods
from depara_core.evaluation.ranking import RankingEvaluator
from depara_core.viz import plots
from depara_core.viz.views import ranking_view, task_view


def _ms(samples: list[float]) -> str:
    s = sorted(samples)
    return f"median {1000 * statistics.median(s):.1f} ms, p95 {1000 * s[int(0.95 * (len(s) - 1))]:.1f} ms, max {1000 * s[-1]:.1f} ms"


def synthetic_terms(n: int = 20, seed: int = 0) -> tuple[SimilarityTerms, GroundTruth]:
    rng = np.random.default_rng(seed)
    names = tuple(f"task{i:02d}" for i in range(n))
    base = rng.normal(size=(n, 6))
    sim = base @ base.T
    sim = (sim - sim.min()) / np.ptp(sim)
    s_v = np.clip(0.1 * sim + 0.02 * rng.random((n, n)), 0, 1)
    s_e = np.clip(sim + 0.1 * rng.random((n, n)), 0, 1)
    for m in (s_v, s_e):
        np.fill_diagonal(m, 1.0)
    gt = GroundTruth.from_matrix(names, sim + 0.2 * rng.random((n, n)), name="synthetic")
    return SimilarityTerms(names, s_v, s_e, s_e * 0.9, s_e * 0.8), gt


def _send(fig) -> int:
    """What st.plotly_chart does with a figure before it leaves the server."""
    import plotly.tools

    figure = plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True)
    return len(pio.to_json(figure, validate=False))


def bench_lambda(repeats: int = 40, terms: SimilarityTerms | None = None, gt: GroundTruth | None = None, label: str = "20 models (synthetic)") -> None:
    if terms is None or gt is None:
        terms, gt = synthetic_terms()
    ev = RankingEvaluator(terms.names, gt, 5)
    static = evaluate_methods(terms, ev, 1.0, 5, methods=("DEPARA-V", "DEPARA-E", "RSA", "CKA"))  # cached in the app
    times, core_times, sizes = [], [], 0
    for lam in np.linspace(0, 4, repeats):
        t = time.perf_counter()
        view = task_view(terms, float(lam))
        fig, _ = ranking_view(terms, terms.names[3], float(lam))
        t_eval = time.perf_counter()
        live = evaluate_methods(terms, ev, float(lam), 5, methods=("DEPARA",), baselines=False)
        import pandas as pd

        curves = pd.concat([live.curves, static.curves], ignore_index=True)
        core = time.perf_counter()
        sizes = sum(_send(f) for f in (view.tree_fig, view.matrix_fig, fig))
        core = time.perf_counter() - core + (t_eval - t)
        pr = plots.pr_curve({m: (g["recall"].to_numpy(), g["precision"].to_numpy()) for m, g in curves.groupby("method", sort=False)})
        sizes += _send(pr)
        times.append(time.perf_counter() - t)
        core_times.append(core)
    print(f"λ path, {label}, matrix + tree + ranking (built and serialised): {_ms(core_times)}")
    print(f"λ path, {label}, all of the fragment (also live P@K/R@K table and PR curve): {_ms(times)}; {sizes / 1e3:.0f} kB of chart specs")


def bench_heatmap() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 32)).astype(np.float32)
    edges = np.corrcoef(x)
    ids = [f"p{i:04d}" for i in range(1000)]
    t = time.perf_counter()
    order = cluster_order(edges)
    fig = plots.edge_heatmap(edges, ids, order=order)
    size = _send(fig)
    dt = time.perf_counter() - t
    z = fig.data[0].z
    print(f"edge heatmap, 1000 probes: sent {z.shape[0]}x{z.shape[1]} {z.dtype} ({size / 1e6:.2f} MB), clustered+built+serialised in {dt * 1000:.0f} ms")


def bench_pages() -> None:
    from streamlit.testing.v1 import AppTest

    cache = os.environ.get("DEPARA_CACHE_DIR") or tempfile.mkdtemp(prefix="depara-bench-")
    os.environ["DEPARA_CACHE_DIR"] = cache
    count = int(os.environ.get("DEPARA_PROBE_COUNT", "8"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=900)
    at.session_state["probe_count"] = count
    t = time.perf_counter()
    at.run()
    print(f"app first run ({len(at.session_state['models'])} models of {at.session_state['zoo']!r}, {count} probes, cache {cache}): {time.perf_counter() - t:.1f} s")
    pages = ["pages/1_setup.py", "pages/2_attribution_maps.py", "pages/3_edges.py", "pages/5_layer_selection.py", "pages/4_task_transferability.py"]
    for page in pages:  # warm the in-process caches once
        at.switch_page(page).run()
    for page in pages:
        samples = []
        for _ in range(3):
            t = time.perf_counter()
            at.switch_page(page).run()
            samples.append(time.perf_counter() - t)
        assert not at.exception, [e.value for e in at.exception]
        print(f"page switch to {Path(page).stem:<26} {_ms(samples)}")
    samples = []
    for lam in (0.5, 1.5, 2.5, 3.5, 4.5):
        t = time.perf_counter()
        at.slider(key="lam_slider").set_value(lam).run()
        samples.append(time.perf_counter() - t)
    print(f"λ change in the app (whole-script rerun under AppTest; the browser reruns only the fragment): {_ms(samples)}")
    done = [w for w in at.session_state["workspaces"].values() if w.complete]
    if done and done[-1].ground_truth is not None:
        ws = done[-1]
        bench_lambda(20, ws.terms, ws.ground_truth, f"{len(ws.names)} models of {ws.config.zoo!r}")


def bench_browser() -> None:
    """First run with an empty cache and a warm start after a restart, as a user sees them."""
    from playwright.sync_api import sync_playwright

    cache = tempfile.mkdtemp(prefix="depara-first-run-")
    for label in ("first run (empty cache)", "warm start (server restarted, disk cache)"):
        port = 8600 + int(time.time()) % 300
        env = {**os.environ, "DEPARA_CACHE_DIR": cache}
        env.pop("DEPARA_PROBE_COUNT", None)
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address", "127.0.0.1"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            t0 = time.perf_counter()
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"])
                page = browser.new_page()
                while True:
                    try:
                        page.goto(f"http://127.0.0.1:{port}", timeout=5000)
                        break
                    except Exception:
                        time.sleep(0.3)
                page.wait_for_selector(".js-plotly-plot >> nth=1", timeout=900_000)
                dt = time.perf_counter() - t0
                browser.close()
            print(f"browser, {label}: matrix and tree drawn {dt:.1f} s after starting the server")
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--browser", action="store_true", help="also time the first run and a warm start in Chromium")
    parser.add_argument("--no-app", action="store_true", help="skip the AppTest page timings")
    args = parser.parse_args()
    bench_lambda()
    bench_heatmap()
    if not args.no_app:
        bench_pages()
    if args.browser:
        bench_browser()


if __name__ == "__main__":
    main()
