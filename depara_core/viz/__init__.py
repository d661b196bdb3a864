"""Figures: pure functions from arrays (:mod:`.plots`) or domain objects (:mod:`.views`) to plotly
figures, with input checks in :mod:`.validate`. Nothing here imports torch."""
