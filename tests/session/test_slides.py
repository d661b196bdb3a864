"""The presentation view's figures: every label drawn large and with room for it."""

from __future__ import annotations

from depara_core.session.slides import deck, presentation_style, slides
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


def test_the_lambda_sweep_slide_keeps_its_frames_and_gets_room_for_its_rows():
    ws = demo_workspace(models=4, probes=6)
    (slide,) = [s for s in slides(ws, 0.5, target="m1") if s.title.startswith("λ sweep")]
    big = presentation_style(slide.figure, height=slide.height)
    assert slide.height > slide.figure.layout.height and big.layout.height == slide.height
    assert len(big.frames) == len(slide.figure.frames) > 20 and big.layout.sliders[0].active == [f.name for f in big.frames].index("0.5")
    assert all(f.layout.title.font.size is None for f in big.frames)  # a frame never resets the large title
    assert not [s for s in slides(ws, 0.5, method="RSA") if s.title.startswith("λ sweep")]  # λ changes nothing for RSA


def test_the_deck_draws_only_the_slide_asked_for(monkeypatch):
    import depara_core.session.slides as slides_module

    ws = demo_workspace(models=4, probes=6)
    drawn: list[str] = []
    real = slides_module.lambda_sweep
    monkeypatch.setattr(slides_module, "lambda_sweep", lambda *a, **k: drawn.append("sweep") or real(*a, **k))
    plan = slides_module.deck(ws, 1.0, target="m2")
    assert [t for t, _ in plan] == [s.title for s in slides(ws, 1.0, target="m2")] and drawn == ["sweep"]  # slides() drew it once
    drawn.clear()
    assert plan[0][1]().title == "task tree" and drawn == []
    assert plan[3][1]().figure.frames and drawn == ["sweep"]


def test_the_deck_builds_its_sweep_with_the_builder_it_is_given():
    from depara_core.session.slides import deck
    from depara_core.viz.sweep import lambda_sweep

    ws = demo_workspace(models=4, probes=6)
    calls: list[tuple[str, float, str]] = []

    def cached(terms, target, lam, method):
        calls.append((target, lam, method))
        return lambda_sweep(terms, target, lam, method)

    plan = dict(deck(ws, 0.5, target="m2", sweep_figure=cached))
    slide = plan["λ sweep (the figure's own slider)"]()
    assert calls == [("m2", 0.5, "DEPARA")] and slide.figure.frames


def test_attribution_maps_chosen_for_showing_get_a_slide_drawn_as_chosen():
    from depara_core.session.slides import MapsShown
    from depara_core.session.workspace import demo_workspace
    from depara_core.viz.display import MapDisplay
    from depara_core.viz.views import attribution_grid_view

    ws = demo_workspace()
    display = MapDisplay(view="map", signed=False)
    plan = dict(deck(ws, 1.0, maps=MapsShown(("m2", "gone", "m0", "m2"), (3, -1, 1, 10_000, 3), display)))
    assert "attribution maps of 2 probes" in plan
    shown = plan["attribution maps of 2 probes"]().figure
    columns = [(m, ws.graph(m), ws.model(m).spec.preprocess) for m in ("m2", "m0")]
    assert shown.to_plotly_json() == attribution_grid_view(columns, ws.probes, [3, 1], display).to_plotly_json()
    assert not [t for t in dict(deck(ws, 1.0, maps=MapsShown(("gone",), (0,)))) if t.startswith("attribution")]  # nothing left to show
    assert not [t for t in dict(deck(ws, 1.0)) if t.startswith("attribution")]


def test_every_slide_is_drawn_under_its_own_title():
    from depara_core.session.slides import MapsShown

    ws = demo_workspace()
    plan = deck(ws, 1.0, maps=MapsShown(("m0",), (0,)))
    assert [draw().title for _, draw in plan] == [title for title, _ in plan]
