"""Task transferability: model × model similarity, source ranking, task tree and, with measured
transfer, P@K / R@K and a cross-validated λ. Moving λ only recombines precomputed terms."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from depara_core.compare.terms import LAMBDA_METHODS
from depara_core.evaluation.methods import evaluate_methods
from depara_core.evaluation.ranking import ground_truth_for
from depara_core.evaluation.stability import ranking_stability
from depara_core.session.workspace import terms_digest
from depara_core.viz import plots, sweep
from depara_core.viz.views import MATRIX_SCALES, ranking_view, task_view
from pages import _lambda_link as lambda_link
from pages import _ui as ui

ws = ui.results_page(
    "Task transferability",
    "Which source model transfers best to a target: s = s_V + λ·s_E between their attribution graphs (higher = more similar).",
)
for note in ws.notes:
    st.caption(note)
graph_notes = ws.graph_notes()
if graph_notes:
    with st.expander(f"Notes on the graphs ({len(graph_notes)})", icon=":material/info:"):
        st.markdown("\n".join(f"- {n}" for n in graph_notes))
terms = ws.terms
digest = terms_digest(terms)
METHOD_HELP = (
    "DEPARA: the paper's s_V + λ·s_E. DEPARA-V / -E: node or edge term alone. 'centred': features centred over probes before "
    "the edges (the original code). Baselines, all label-free: RSA, linear and debiased CKA, DDS (duality diagram similarity) "
    "and the pseudo-label estimators, which score the source's features against the target network's own outputs on the probes: "
    "PL-LogME (LogME for the target's principal components; the strongest estimator on the embedded benchmark, see docs/RESULTS.md), "
    "PL-H-score (shrinkage H-score for k-means classes of the target's components) and PL-NCE (−H(target's classes | source's))."
)

SWEEP_HELP = (
    "One figure (task tree, matrix and the target's best sources) with its own λ slider: every λ of a grid is computed once, "
    "and moving the slider redraws in your browser without waiting for the server; when it comes to rest, the page's λ follows "
    "(the link, the exports and the evaluation below). Off: separate views that follow the page's λ."
)


@st.fragment
def live() -> None:
    """λ, method and target controls with everything that depends on them; reruns alone."""
    ss = st.session_state
    c1, c2, c3, c4, c5 = st.columns([3.4, 1.1, 1.6, 1.4, 1.8])
    if ss.get("method_view") not in terms.methods:
        ss.method_view = "DEPARA"
    # bound to plain keys (ui.bind): the choices survive visits to other pages, and the link keeps them
    method = c3.selectbox("Method", terms.methods, **ui.bind("method_view"), help=METHOD_HELP)
    fixed_lam = method not in LAMBDA_METHODS  # λ changes nothing for the other methods
    why = f"λ weighs s_E in {' and '.join(LAMBDA_METHODS)} only" if fixed_lam else "Weight of the edge term s_E"
    c1.slider("λ", 0.0, 10.0, step=0.05, **ui.bind("lam", widget="lam_slider", upper=10.0), help=why, disabled=fixed_lam)
    c2.number_input("λ value", min_value=0.0, max_value=100.0, step=0.05, **ui.bind("lam", widget="lam_number"), disabled=fixed_lam)
    can_sweep = not fixed_lam and 3 <= len(terms.names) <= sweep.MAX_SWEEP_MODELS
    in_browser = c5.toggle("λ in the browser", **ui.bind("lam_in_browser"), disabled=not can_sweep, help=SWEEP_HELP) and can_sweep
    scale = c4.radio("Colours", MATRIX_SCALES, **ui.bind("matrix_scale"), format_func={"pairs": "span the pairs", "fixed": "fixed range"}.get, disabled=in_browser,
                     help="Span the pairs: the off-diagonal range, diagonal marked. Fixed: [0, 1+λ] for DEPARA, [-1, 1] otherwise.")  # fmt: skip
    lam = float(ss.lam)
    if ss.get("target") not in terms.names:
        ss.target = terms.names[0]
    if in_browser:
        stability(lam, method)
        target = st.selectbox("Target task", terms.names, **ui.bind("target"))
        drawn_at = lambda_link.sweep_lambda((digest, target, method), lam)
        ui.chart(ui.lambda_sweep(digest, target, drawn_at, method, terms), f"lambda-sweep-{target}", key="sweep")
        lambda_link.follow_sweep(sweep.SWEEP_META, _use_lambda)
        grid = sweep.lambda_grid(drawn_at)
        st.caption(f"The figure's own slider switches between {len(grid)} values of λ from 0 to {grid[-1]:g}, computed once, in your browser. "
                   f"When it comes to rest, the page's λ (now {lam:g}) follows it: the slider above, the link, the exports and the evaluation below.")  # fmt: skip
    else:
        view = task_view(terms, lam, method, scale=scale)
        left, right = st.columns([1, 2])
        with left:
            ui.chart(view.tree_fig, "task-tree", key="tree")
        with right:
            ui.chart(view.matrix_fig, "similarity-matrix", key="matrix")
        stability(lam, method)
        st.subheader("Ranking of sources")
        target = st.selectbox("Target task", terms.names, **ui.bind("target"))
        fig, table = ranking_view(terms, target, lam, method)
        a, b = st.columns([3, 2])
        with a:
            ui.chart(fig, f"ranking-{target}", key="ranking")
        with b:
            ui.table(table, f"ranking-{target}", key="ranking_table")
    evaluation(lam)
    ui.sync_link()  # λ, method and target change in this fragment alone


def stability(lam: float, method: str) -> None:
    """The stability badge: do the rankings survive swapping half of the probes for the other half?"""
    if len(ws.probes) < 6:
        return
    with ui.guard("stability"):
        half_a, half_b = ui.stability_halves(digest, ws)
        shown = method if method in half_a.methods else "DEPARA"
        s = ranking_stability(half_a, half_b, lam, shown)
        n = len(ws.probes)
        st.metric(
            f"Ranking stability, {shown} (two halves of {n} probes)", s.text(), border=True,
            help=f"Per target, Spearman's ρ between the source rankings computed on {n // 2} and on the other {n - n // 2} probes, "
            "mean over targets with a 95% bootstrap interval. Near 1: more probes would not change the ranking much; "
            "low: read the ranking loosely, or add probes.",
        )  # fmt: skip


def evaluation(lam: float) -> None:
    gt = ui.ground_truth(ws)
    st.subheader("Against measured transfer")
    if gt is None:
        st.caption("No measured transfer for this zoo. Upload a CSV (source,target,affinity; higher = better) below to score the rankings.")
        return
    with ui.guard("ground truth"):
        gt_key = gt.digest
        ground_truth_for(terms.names, gt)  # says plainly when it covers none of the chosen models
        relevant = st.number_input("Relevant sources per target (top-r of the measured ranking)", 1, max(1, len(terms.names) - 2), min(5, len(terms.names) - 2), key="relevant")
        ev = ui.evaluator(digest, gt_key, relevant, terms, gt)
        st.caption(f"{gt.name or 'ground truth'}: {ev.protocol} (the CLI's evaluate counts the same way).")
        without = [n for n in terms.names if n not in ev.targets]
        st.caption(f"Measured as targets: {', '.join(ev.targets)}." + (f" No measured transfer to: {', '.join(without)}." if without else ""))
        static = ui.static_evaluation(digest, gt_key, relevant, terms, gt)
        live_eval = evaluate_methods(terms, ev, lam, relevant, methods=LAMBDA_METHODS, baselines=False)
        # the λ methods at the current λ first, then the λ-independent ones (random and oracle last)
        curves = pd.concat([live_eval.curves, static.curves], ignore_index=True)
        summary = pd.concat([live_eval.summary, static.summary], ignore_index=True)
        a, b = st.columns([3, 2])
        with a:
            ui.chart(plots.pr_curve({m: (g["recall"].to_numpy(), g["precision"].to_numpy()) for m, g in curves.groupby("method", sort=False)}, title="precision–recall"), "pr-curve", key="pr")
        with b:
            ui.table(summary, "methods-summary", key="summary")
        with st.expander("P@K and R@K for every K"):
            ui.table(curves, "precision-recall-at-k", key="pk_table")
        metric = st.radio("Suggest λ by", ["spearman", "precision"], horizontal=True, key="cv_metric", format_func={"spearman": "Spearman ρ", "precision": f"P@{relevant}"}.get)
        sug = ui.lambda_suggestion(digest, gt_key, relevant, metric, terms, gt)
        st.info(sug.text, icon=":material/tips_and_updates:")
        st.button(f"Use λ = {sug.lam:g}", on_click=_use_lambda, args=(sug.lam,), key="use_lambda")


def _use_lambda(value: float) -> None:
    st.session_state.lam = float(value)


top = st.container()
with st.expander("Upload measured transfer (ground truth)"):
    up = st.file_uploader("CSV with columns source,target,affinity (higher = better)", type=["csv"], key="gt_file")
    with ui.guard("ground truth"):
        if up is not None:
            gt = ui.ground_truth_upload(up.name, up.getvalue())
            ground = ground_truth_for(terms.names, gt)
            st.session_state.gt_upload = gt
            st.success(f"Using {up.name}: {len(ground.targets)} target(s) among the chosen models.")

with top, ui.guard("transferability"):
    live()
