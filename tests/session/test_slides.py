"""The presentation view's figures: every label drawn large and with room for it."""

from __future__ import annotations

from depara_core.session.slides import presentation_style, slides
from depara_core.session.workspace import demo_workspace
from depara_core.viz import plots


def test_every_slide_has_large_ticks_and_margins_that_hold_its_labels():
    ws = demo_workspace(models=4, probes=6)
    deck = slides(ws, 1.0, target="m1")
    assert [s.title for s in deck][:2] == ["task tree", "similarity matrix"]
    for slide in deck:
        big = presentation_style(slide.figure, font_size=20)
        axes = [big.layout[name] for name in big.layout if name.startswith(("xaxis", "yaxis"))]
        assert axes and all(ax.tickfont.size == 16 for ax in axes), slide.title
        assert big.layout.font.size == 20 and big.layout.height == 760
        names = list(ws.names)
        if slide.title in ("task tree", "similarity matrix") or slide.title.startswith("ranking"):
            assert big.layout.margin.l >= plots.label_margin(names, 16), slide.title  # model names on the left fit at 16 px
    original = deck[0].figure
    assert original.layout.font.size != 20  # the page's own figure is left as it was
