"""Layer selection: every layer of a source model against the target's encoder graph (Eq. 6); the
recommended layer is the one with the highest s(λ). Measured per-layer transfer, when given, is
drawn on a second axis with its Spearman correlation to s(λ)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from depara_core.compare.terms import weighting_formula
from depara_core.evaluation.layers import LayerTruth, layer_agreement
from depara_core.viz.views import layer_view
from pages import _ui as ui

ws = ui.results_page(
    "Layer selection",
    "Which layer of a source model to transfer from: s(λ) between each source layer's graph and the target's encoder graph.",
)
ss = st.session_state

main = st.container()
with st.expander("Upload measured per-layer transfer"):
    up = st.file_uploader("CSV with columns source,target,layer,value (higher = better)", type=["csv"], key="layer_truth_file")
    with ui.guard("layer ground truth"):
        if up is not None:
            ss.layer_truth_upload = LayerTruth.from_csv(up.getvalue(), name=up.name.rsplit(".", 1)[0])
            st.success(f"Using {up.name} ({len(ss.layer_truth_upload.table)} rows); it is drawn for the pairs it covers.")

with main, ui.guard("layer selection"):
    c1, c2 = st.columns(2)
    if ss.get("layer_source") not in ws.names:  # e.g. a link naming a model of another zoo
        ss.pop("layer_source", None)
    source = c1.selectbox("Source model", ws.names, key="layer_source")
    others = [n for n in ws.names if n != source]
    if ss.get("layer_target") not in others:
        ss.pop("layer_target", None)
    target = c2.selectbox("Target", others, key="layer_target")
    lam = float(ss.lam)
    scores = ws.layer_results.get((source, target))
    if scores is None:
        missing = [layer.name for layer in ws.model(source).selectable_layers() if not ws.has(source, layer.name)]
        uncached = ws.missing("all").get(source, [])
        job = ui.running_job()
        following = job is not None and job.key == ui.layers_job(ws, source, target)  # started before a page switch
        if following or not uncached or st.button(f"Score the {len(missing)} layers of {source}", type="primary", key="score_layers", icon=":material/play_arrow:"):
            if ui.compute_layers(ws, source, target):
                st.rerun()  # redraw without the button
        else:
            st.info(f"{len(uncached)} layer graph(s) of {source} are not computed yet (finished ones are cached).", icon=":material/pending:")
    if scores is not None:
        truth = ui.layer_truth()
        measured = truth.series(source, target, scores.layers) if truth is not None else None
        labels = [ws.layer_label(source, layer).split(":")[0] for layer in scores.layers]
        fig, table = layer_view(scores, lam, labels, measured, truth.name if truth is not None else "measured transfer")
        best = scores.best(lam)
        m1, m2 = st.columns(2)
        m1.metric("Recommended layer", ws.layer_label(source, best), help=f"argmax of {weighting_formula(scores.node_scale, lam)}")
        if measured is not None:
            rho = layer_agreement(scores, lam, measured)
            m2.metric("Spearman ρ (s(λ) vs measured)", "n/a" if np.isnan(rho) else f"{rho:.3f}")
        ui.chart(fig, f"layers-{source}-{target}", key="layer_chart")
        ui.table(table, f"layers-{source}-{target}", key="layer_table")
        st.caption(f"λ = {lam:g} (set it in the sidebar or on Task transferability).")
