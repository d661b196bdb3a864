"""Layer selection: every layer of a source model against the target's encoder graph (Eq. 6); the
recommended layer is the one with the highest s(λ). Measured per-layer transfer, when given, is
drawn on a second axis with its Spearman correlation to s(λ)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from depara_core.compare.terms import weighting_formula
from depara_core.evaluation.layers import LayerTruth, layer_agreement
from depara_core.session.link import MAX_LAYER_TARGETS
from depara_core.viz.plots import score_label
from depara_core.viz.views import layer_targets_view, layer_view
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
        ss.layer_source = ws.names[0]
    source = c1.selectbox("Source model", ws.names, **ui.bind("layer_source"))
    others = [n for n in ws.names if n != source]
    ss.layer_targets = [t for t in ss.get("layer_targets") or [] if t in others][:MAX_LAYER_TARGETS] or others[:1]
    targets = tuple(c2.multiselect("Targets", others, **ui.bind("layer_targets"), max_selections=MAX_LAYER_TARGETS,
                                   help="Score the source's layers against several targets at once; its layers are computed once."))  # fmt: skip
    lam = float(ss.lam)
    pending = tuple(t for t in targets if (source, t) not in ws.layer_results)
    if pending:
        missing = [layer.name for layer in ws.model(source).selectable_layers() if not ws.has(source, layer.name)]
        uncached = ws.missing("all").get(source, [])
        job = ui.running_job()
        following = job is not None and job.key == ui.layers_job(ws, source, pending)  # started before a page switch
        label = f"Score the {len(missing)} layers of {source}" + (f" against {len(pending)} targets" if len(pending) > 1 else "")
        if following or not uncached or st.button(label, type="primary", key="score_layers", icon=":material/play_arrow:"):
            if ui.compute_layers(ws, source, pending):
                st.rerun()  # redraw without the button
        else:
            st.info(f"{len(uncached)} layer graph(s) of {source} are not computed yet (finished ones are cached).", icon=":material/pending:")
    done = [ws.layer_results[(source, t)] for t in targets if (source, t) in ws.layer_results]
    truth = ui.layer_truth()
    measured_name = truth.name if truth is not None else "measured transfer"
    if done:
        offered = [m for m in done[0].methods if all(m in s.methods for s in done)]  # scored for every target shown
        if ss.get("layer_method") not in offered:
            ss.layer_method = "DEPARA"
        method = st.selectbox(
            "Rank layers by", offered, **ui.bind("layer_method"), format_func=lambda m: f"DEPARA, s(λ={lam:g}) (the paper's)" if m == "DEPARA" else m,
            help="DEPARA's s(λ) is the paper's Eq. 6. The other label-free estimators are scored from the same graphs; "
            "on the photo-task benchmark PL-LogME ranks layers best (docs/RESULTS.md).",
        )  # fmt: skip
        labels = [ws.layer_label(source, layer).split(":")[0] for layer in done[0].layers]
        measured = {s.target: truth.series(source, s.target, s.layers) for s in done} if truth is not None else {}
        if len(done) > 1:
            fig, table = layer_targets_view(done, lam, labels, measured, measured_name, method)
            ui.chart(fig, f"layers-{source}-targets", key="layer_targets_chart")
            ui.table(table, f"layer-recommendations-{source}", key="layer_targets_table")
            detail = st.selectbox("Details for target", [s.target for s in done], key="layer_detail")
            scores = next(s for s in done if s.target == detail)
        else:
            scores = done[0]
        m = measured.get(scores.target)
        fig, table = layer_view(scores, lam, labels, m, measured_name, method)
        best = scores.best(lam, method)
        m1, m2 = st.columns(2)
        m1.metric("Recommended layer", ws.layer_label(source, best), help=f"argmax of {weighting_formula(scores.node_scale, lam) if method == 'DEPARA' else method}")
        if m is not None:
            rho = layer_agreement(scores, lam, m, method)
            m2.metric(f"Spearman ρ ({score_label(method)} vs measured)", "n/a" if np.isnan(rho) else f"{rho:.3f}")
        ui.chart(fig, f"layers-{source}-{scores.target}", key="layer_chart")
        ui.table(table, f"layers-{source}-{scores.target}", key="layer_table")
        st.caption(f"λ = {lam:g} (set it in the sidebar or on Task transferability).")
