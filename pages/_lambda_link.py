"""The λ sweep's own slider sets the page's λ: a small component that listens to the sweep figure's
slider in the browser and, a moment after the last step, sends the λ it shows to the server.

The figure redraws itself in the browser (no round trip); the server then only reruns the parts of
the page that follow λ (the evaluation, the stability badge, the link). The figure is not redrawn
by that rerun: :func:`sweep_lambda` keeps building it at the λ it was drawn at, so its spec does
not change.
"""

from __future__ import annotations

import streamlit as st
import streamlit.components.v2 as components

from depara_core.session.link import checked_lambda

__all__ = ["follow_sweep", "forget_drawn", "sweep_lambda", "SETTLE_MS"]

SETTLE_MS = 1000
"""How long the figure's slider must rest before its λ is sent, unless the pointer leaves the figure
first: while a person steps through λ the page does not rerun (a rerun's redraw of the evaluation
would delay the next step's frame), and a drag sends once, at its end."""

# Written by hand: plotly's slider events exist only in the browser, and Streamlit's plotly chart
# reports selections, not slider moves. The listener is attached to the graph div once and reads the
# current sender from it, so a rerun that mounts the component again does not add a second listener.
_JS = """
export default function (component) {
  const { setTriggerValue, data } = component;
  let timer = null;
  let pending = null;
  const flush = () => {
    clearTimeout(timer);
    if (pending !== null) setTriggerValue("lam", pending);
    pending = null;
  };
  const send = (event) => {
    if (!event || event.interaction === false || !event.step) return;
    const lam = Number(event.step.label);
    if (!Number.isFinite(lam)) return;
    pending = lam;
    clearTimeout(timer);
    timer = setTimeout(flush, data.settle_ms);
  };
  const attach = () => {
    for (const gd of document.querySelectorAll(".js-plotly-plot")) {
      const frames = gd._transitionData && gd._transitionData._frames;
      if (!gd.on || !frames || !frames.length || !(gd.layout && gd.layout.meta === data.meta)) continue;
      gd.__deparaLambda = { send, flush };
      if (!gd.__deparaListens) {
        gd.on("plotly_sliderchange", (event) => gd.__deparaLambda && gd.__deparaLambda.send(event));
        gd.addEventListener("mouseleave", () => gd.__deparaLambda && gd.__deparaLambda.flush());
        gd.__deparaListens = true;
      }
    }
  };
  attach();
  const poll = setInterval(attach, 300);  // the chart may be drawn after this component
  return () => {
    clearInterval(poll);
    clearTimeout(timer);
    for (const gd of document.querySelectorAll(".js-plotly-plot")) {
      if (gd.__deparaLambda && gd.__deparaLambda.send === send) gd.__deparaLambda = null;  // an unmounted listener sends nothing
    }
  };
}
"""

_COMPONENT = components.component("depara_lambda_link", js=_JS, isolate_styles=False)


def _take(key: str, on_lambda) -> None:
    state = st.session_state.get(key)
    lam = checked_lambda(state.get("lam")) if state is not None else None  # whatever a visitor's browser sends
    if lam is None:
        return
    st.session_state.sweep_shown = lam  # the figure shows it already
    on_lambda(lam)


def follow_sweep(meta: str, on_lambda, key: str = "lam_link") -> None:
    """Mount the listener for the sweep figure whose ``layout.meta`` is ``meta``; ``on_lambda(λ)``
    runs (as a callback, before the rerun) when its slider has come to rest on a new λ."""
    _COMPONENT(key=key, data={"meta": meta, "settle_ms": SETTLE_MS}, height=0, on_lam_change=lambda: _take(key, on_lambda))


def forget_drawn() -> None:
    """Called at the start of every full run: a full run (another page, a sidebar change) may draw
    the sweep anew, so only the reruns of the fragment that drew it keep its λ (:func:`sweep_lambda`)."""
    st.session_state.pop("sweep_drawn", None)


def sweep_lambda(view: tuple, lam: float) -> float:
    """The λ to build the sweep figure at for ``view`` (what else the figure depends on: terms,
    target, method) when the page's λ is ``lam``: the λ it was drawn at, when the figure itself moved
    to ``lam`` since it was drawn in this page run; otherwise ``lam``."""
    ss = st.session_state
    drawn = ss.get("sweep_drawn")
    if drawn is not None and drawn[0] == view and ss.get("sweep_shown") == lam:
        return drawn[1]
    ss.sweep_drawn = (view, lam)
    ss.sweep_shown = lam
    return lam
