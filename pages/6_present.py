"""Present: the meeting's figures one per screen, in large type, with the settings they were made with."""

from __future__ import annotations

import streamlit as st

from depara_core.session.slides import presentation_style, slides
from pages import _ui as ui

ws = ui.results_page("Present", "The main figures one per screen, large, for a projector. Set λ, method and target on Task transferability.")
ss = st.session_state
lam = float(ss.lam)
with ui.guard("presentation"):
    deck = slides(ws, lam, target=ss.get("target"), ground_truth=ui.ground_truth(ws), layer_truth=ui.layer_truth(), method=ss.get("method_view", "DEPARA"))
    ss.slide = min(int(ss.get("slide", 0)), len(deck) - 1)
    back, where, forward = st.columns([1, 4, 1])
    back.button("Previous", key="slide_back", icon=":material/arrow_back:", disabled=ss.slide == 0, on_click=lambda: ss.update(slide=ss.slide - 1), width="stretch")
    forward.button("Next", key="slide_next", icon=":material/arrow_forward:", disabled=ss.slide >= len(deck) - 1, on_click=lambda: ss.update(slide=ss.slide + 1), width="stretch")
    slide = deck[ss.slide]
    where.markdown(f"### {slide.title}  \n{ss.slide + 1} of {len(deck)} · {ws.terms.method_label(ss.get('method_view', 'DEPARA'), lam)} · {len(ws.probes)} probes · {ws.config.conventions.name} conventions")
    ui.chart(presentation_style(slide.figure, height=slide.height or 760), f"slide-{ss.slide + 1}", key="slide_chart")
