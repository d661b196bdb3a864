"""Present: the meeting's figures one per screen, in large type, with the settings they were made with."""

from __future__ import annotations

import streamlit as st

from depara_core.session.slides import deck, presentation_style
from depara_core.session.workspace import terms_digest
from depara_core.viz.sweep import SWEEP_META
from pages import _lambda_link as lambda_link
from pages import _ui as ui

ws = ui.results_page("Present", "The main figures one per screen, large, for a projector. Set λ, method and target on Task transferability.")
ss = st.session_state
lam = float(ss.lam)
with ui.guard("presentation"):
    digest = terms_digest(ws.terms)
    plan = deck(ws, lam, target=ss.get("target"), ground_truth=ui.ground_truth(ws), layer_truth=ui.layer_truth(), method=ss.get("method_view", "DEPARA"),
                sweep_figure=lambda terms, target, lam_, method: ui.lambda_sweep(digest, target, lam_, method, terms),  # the page's cached sweep
                maps=ui.maps_shown(ws))  # the Attribution page's maps, drawn as there  # fmt: skip
    ss.slide = min(int(ss.get("slide", 0)), len(plan) - 1)
    back, where, forward = st.columns([1, 4, 1])
    back.button("Previous", key="slide_back", icon=":material/arrow_back:", disabled=ss.slide == 0, on_click=lambda: ss.update(slide=ss.slide - 1), width="stretch")
    forward.button("Next", key="slide_next", icon=":material/arrow_forward:", disabled=ss.slide >= len(plan) - 1, on_click=lambda: ss.update(slide=ss.slide + 1), width="stretch")
    slide = plan[ss.slide][1]()  # only the slide on screen is drawn
    where.markdown(f"### {slide.title}  \n{ss.slide + 1} of {len(plan)} · {ws.terms.method_label(ss.get('method_view', 'DEPARA'), lam)} · {len(ws.probes)} probes · {ws.config.conventions.name} conventions")
    ui.chart(presentation_style(slide.figure, height=slide.height or 760), f"slide-{ss.slide + 1}", key="slide_chart")
    if slide.figure.layout.meta == SWEEP_META:  # the sweep's own slider sets the page's λ when it rests
        lambda_link.follow_sweep(SWEEP_META, lambda value: ss.update(lam=float(value)))
