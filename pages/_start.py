"""What a new session shows before the engine is imported: the start page's last results.

``app.py`` calls :func:`show_last_results` before anything imports torch (seconds on a restarted
server); the page clears the preview with :func:`clear` once the checked results, or whatever
stands in their way, are drawn. Nothing here may import the engine.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from depara_core.session.snapshot import load_snapshot, start_key
from depara_core.store import default_cache_dir
from depara_core.viz.plots import figure_config
from depara_core.viz.views import task_view

__all__ = ["show_last_results", "clear"]

_KEY = "start_preview"


def show_last_results(title: str, here: bool) -> None:
    """On a session's first run, when the start page is ``here``, draw the last results kept for its
    start address (if any). Called at the top of every run: a preview left by an earlier run (which
    stopped before clearing it) is forgotten, never emptied into this run's elements."""
    ss = st.session_state
    ss.pop(_KEY, None)
    if ss.get("initialised") or not here:
        return
    snap = load_snapshot(default_cache_dir(), start_key(st.query_params.to_dict()))
    if snap is None:
        return
    box = st.empty()
    ss[_KEY] = box
    try:
        with box.container():
            st.title(title)
            when = datetime.fromisoformat(snap.saved).astimezone().strftime("%Y-%m-%d %H:%M")
            st.info(f"The last results of this start page ({snap.label}, {when}), shown while the app loads; "
                    "the checked results replace them in a moment.", icon=":material/history:")  # fmt: skip
            view = task_view(snap.terms, snap.lam, snap.method)
            left, right = st.columns([1, 2])
            left.plotly_chart(view.tree_fig, config=figure_config("task-tree.svg"), width="stretch", key="start_tree")
            right.plotly_chart(view.matrix_fig, config=figure_config("similarity-matrix.svg"), width="stretch", key="start_matrix")
    except Exception:  # noqa: BLE001 - a preview that cannot be drawn is left out; the checked results follow
        clear()


def clear() -> None:
    """Remove the preview (a no-op when none is shown)."""
    box = st.session_state.pop(_KEY, None)
    if box is not None:
        box.empty()
