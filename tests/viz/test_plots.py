"""Figure builders: the data inside each figure must match what was asked for."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy.cluster.hierarchy import leaves_list, linkage

from depara_core.compare.tree import cluster_order
from depara_core.viz import validate as plot_utils
from depara_core.viz.plots import (
    HIGHLIGHT_COLOR,
    attribution_grid,
    attribution_overlay,
    edge_heatmap,
    figure_config,
    layer_scores,
    pr_curve,
    precision_recall_at_k,
    ranking_bar,
    similarity_heatmap,
    tree_figure,
)
from depara_core.viz.validate import attribution_picture

RNG_SEED = 7


def symmetric(n: int, seed: int = RNG_SEED) -> np.ndarray:
    a = np.random.default_rng(seed).random((n, n))
    return (a + a.T) / 2


# --------------------------------------------------------------------------- heatmaps


def test_similarity_heatmap_reorders_labels_and_values_as_float32():
    matrix = np.arange(9, dtype=float).reshape(3, 3) / 10
    labels = ["alexnet", "resnet18", "vgg16"]
    order = [2, 0, 1]
    fig = similarity_heatmap(matrix, labels, order=order, title="models")
    heat = fig.data[0]
    assert list(heat.x) == ["vgg16", "alexnet", "resnet18"]
    assert list(heat.y) == ["vgg16", "alexnet", "resnet18"]
    assert isinstance(heat.z, np.ndarray) and heat.z.dtype == np.float32
    np.testing.assert_array_equal(heat.z, matrix[np.ix_(order, order)].astype(np.float32))
    assert '"dtype":"f4"' in fig.to_json()  # travels as a typed array, not a list of numbers
    assert fig.layout.yaxis.autorange == "reversed"  # first row drawn at the top
    assert fig.layout.title.text == "models"


def test_similarity_heatmap_hover_names_row_column_and_value():
    template = similarity_heatmap(np.eye(2), ["a", "b"]).data[0].hovertemplate
    assert "row: %{y}" in template and "column: %{x}" in template and "%{z" in template


def test_numeric_looking_labels_stay_categories():
    fig = similarity_heatmap(np.eye(3), ["10", "2", "33"], order=[1, 2, 0])
    assert fig.layout.xaxis.type == "category" and fig.layout.yaxis.type == "category"
    assert list(fig.data[0].x) == ["2", "33", "10"]


def test_large_heatmap_is_block_averaged_and_keeps_its_mean():
    n = 1000
    matrix = symmetric(n)
    fig = similarity_heatmap(matrix, [f"m{i}" for i in range(n)], title="big")
    z = fig.data[0].z
    assert z.shape == (500, 500) and z.dtype == np.float32
    assert z.mean() == pytest.approx(matrix.mean(), abs=1e-5)
    assert z[0, 0] == pytest.approx(matrix[:2, :2].mean(), abs=1e-6)
    assert z[-1, 3] == pytest.approx(matrix[-2:, 6:8].mean(), abs=1e-6)
    assert "downsampled" in fig.layout.title.text and fig.layout.title.text.startswith("big")
    assert fig.data[0].x[0] == "m0 … m1"


def test_heatmap_at_the_limit_is_not_downsampled():
    matrix = symmetric(500)
    fig = edge_heatmap(matrix, [f"p{i}" for i in range(500)])
    np.testing.assert_array_equal(fig.data[0].z, matrix.astype(np.float32))
    assert fig.layout.title.text is None


def test_block_mean_handles_a_partial_last_block():
    matrix = np.arange(25, dtype=float).reshape(5, 5)
    small, factor = plot_utils.block_mean(matrix, max_size=3)
    assert factor == 2 and small.shape == (3, 3)
    assert small[2, 2] == matrix[4, 4]
    assert small[0, 2] == matrix[:2, 4].mean()


def two_block_similarity() -> tuple[np.ndarray, list[int]]:
    """Six probes, {0, 2, 4} alike and {1, 3, 5} alike, interleaved."""
    group = np.array([0, 1, 0, 1, 0, 1])
    sim = np.where(group[:, None] == group[None, :], 0.9, 0.1)
    sim += np.random.default_rng(RNG_SEED).normal(0, 0.01, sim.shape)
    sim = (sim + sim.T) / 2
    np.fill_diagonal(sim, 1.0)
    return sim, group.tolist()


def test_cluster_order_puts_each_block_together():
    sim, group = two_block_similarity()
    order = cluster_order(sim)
    assert sorted(order.tolist()) == list(range(6))
    first_half = {group[i] for i in order[:3]}
    second_half = {group[i] for i in order[3:]}
    assert len(first_half) == 1 and len(second_half) == 1 and first_half != second_half


def test_edge_heatmap_follows_the_cluster_order():
    sim, _ = two_block_similarity()
    ids = [f"img{i}.png" for i in range(6)]
    order = cluster_order(sim)
    fig = edge_heatmap(sim, ids, order=order)
    assert list(fig.data[0].y) == [ids[i] for i in order]
    np.testing.assert_allclose(fig.data[0].z, sim[np.ix_(order, order)], rtol=1e-6)
    assert fig.data[0].z.dtype == np.float32


# --------------------------------------------------------------------------- task tree


def test_tree_figure_draws_the_given_tree():
    points = np.random.default_rng(RNG_SEED).normal(size=(7, 3))
    tree = linkage(points, "average")
    labels = [f"task{i}" for i in range(7)]
    fig = tree_figure(tree, labels, title="tasks")
    expected = leaves_list(tree).tolist()
    assert list(fig.layout.yaxis.ticktext) == [labels[i] for i in expected]
    assert list(fig.layout.yaxis.tickvals) == list(range(7))
    xs = np.array([x for x in fig.data[0].x if x is not None], dtype=float)
    np.testing.assert_allclose(np.unique(xs[xs > 0]), np.unique(tree[:, 2]))  # every merge drawn at its height
    ys = np.array([y for y in fig.data[0].y if y is not None], dtype=float)
    assert ys.min() == 0 and ys.max() == 6  # leaves on the heatmap's rows
    assert fig.layout.title.text == "tasks"


def test_tree_figure_rejects_a_bad_linkage_and_label_count():
    tree = linkage(np.random.default_rng(1).normal(size=(4, 2)), "single")
    with pytest.raises(ValueError, match="3 labels for 4 rows"):
        tree_figure(tree, list("abc"))
    with pytest.raises(ValueError, match="linkage"):
        tree_figure(np.ones((3, 3)), list("abcd"))


# --------------------------------------------------------------------------- rankings


def test_ranking_bar_puts_the_best_on_top_and_highlights_one_bar():
    fig = ranking_bar(["alexnet", "vgg16", "resnet18"], [0.3, 0.8, 0.5], highlight="resnet18")
    bars = fig.data[0]
    assert list(bars.y) == ["vgg16", "resnet18", "alexnet"]
    assert list(bars.x) == [0.8, 0.5, 0.3]
    assert fig.layout.yaxis.autorange == "reversed"
    colors = list(bars.marker.color)
    assert colors[1] == HIGHLIGHT_COLOR and colors.count(HIGHLIGHT_COLOR) == 1


def test_ranking_bar_lower_is_better_and_unknown_highlight():
    fig = ranking_bar(["a", "b"], [0.2, 0.1], higher_is_better=False)
    assert list(fig.data[0].y) == ["b", "a"]
    with pytest.raises(ValueError, match="not one of the names"):
        ranking_bar(["a", "b"], [0.2, 0.1], highlight="c")


def test_pr_curve_has_one_trace_per_method_with_the_given_points():
    curves = {
        "DEPARA": ([0.2, 0.6, 1.0], [1.0, 0.75, 0.5]),
        "RSA": ([0.2, 1.0], [0.5, 0.4]),
        "random": ([0.5, 1.0], [0.3, 0.3]),
    }
    fig = pr_curve(curves)
    assert [trace.name for trace in fig.data] == list(curves)
    for trace, (recall, precision) in zip(fig.data, curves.values()):
        np.testing.assert_array_equal(trace.x, recall)
        np.testing.assert_array_equal(trace.y, precision)
        assert trace.mode == "lines+markers"
    assert list(fig.layout.xaxis.range) == [0, 1.05] and list(fig.layout.yaxis.range) == [0, 1.05]
    assert fig.layout.xaxis.title.text == "recall" and fig.layout.yaxis.title.text == "precision"


def test_pr_curve_rejects_mismatched_or_out_of_range_points():
    with pytest.raises(ValueError, match="2 recall values but 1 precision"):
        pr_curve({"DEPARA": ([0.5, 1.0], [1.0])})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pr_curve({"DEPARA": ([50, 100], [1.0, 0.5])})


def test_precision_recall_at_k_plots_both_metrics_per_method_in_k_order():
    table = pd.DataFrame(
        {
            "method": ["DEPARA", "DEPARA", "CKA", "CKA"],
            "k": [3, 1, 1, 3],
            "precision": [0.6, 1.0, 0.0, 0.3],
            "recall": [0.9, 0.3, 0.0, 0.5],
        }
    )
    fig = precision_recall_at_k(table)
    traces = {(trace.name, trace.xaxis): trace for trace in fig.data}
    assert len(fig.data) == 4
    np.testing.assert_array_equal(traces[("DEPARA", "x")].x, [1, 3])
    np.testing.assert_array_equal(traces[("DEPARA", "x")].y, [1.0, 0.6])
    np.testing.assert_array_equal(traces[("DEPARA", "x2")].y, [0.3, 0.9])
    np.testing.assert_array_equal(traces[("CKA", "x2")].y, [0.0, 0.5])
    with pytest.raises(ValueError, match="recall"):
        precision_recall_at_k(table.drop(columns="recall"))


# --------------------------------------------------------------------------- layers


def test_layer_scores_marks_the_best_layer_without_a_second_axis():
    layers = ["conv1", "layer1", "layer2", "layer3"]
    fig = layer_scores(layers, [0.1, 0.2, 0.3, 0.2], [0.2, 0.4, 0.6, 0.5], [0.3, 0.6, 0.9, 0.7], best="layer2")
    assert [trace.name for trace in fig.data][:3] == ["s_V (nodes)", "s_E (edges)", "s(λ)"]
    band = fig.layout.shapes[0]
    assert (band.x0, band.x1) == (1.5, 2.5)
    star = fig.data[-1]
    assert list(star.x) == ["layer2"] and list(star.y) == [0.9]
    assert "yaxis2" not in fig.to_plotly_json()["layout"]


def test_layer_scores_puts_measured_transfer_on_a_secondary_axis():
    layers = ["conv1", "layer1", "layer2"]
    fig = layer_scores(layers, [0.1, 0.2, 0.3], [0.2, 0.4, 0.6], [0.3, 0.6, 0.9], best=0,
                       measured=[0.5, 0.7, 0.6], measured_name="fine-tuned accuracy")
    measured = next(trace for trace in fig.data if trace.name == "fine-tuned accuracy")
    assert measured.yaxis == "y2"
    np.testing.assert_array_equal(measured.y, [0.5, 0.7, 0.6])
    assert fig.layout.yaxis2.overlaying == "y" and fig.layout.yaxis2.title.text == "fine-tuned accuracy"
    assert (fig.layout.shapes[0].x0, fig.layout.shapes[0].x1) == (-0.5, 0.5)
    with pytest.raises(ValueError, match="2 values for 3 layers"):
        layer_scores(layers, [0.1, 0.2, 0.3], [0.2, 0.4, 0.6], [0.3, 0.6, 0.9], measured=[0.5, 0.7],
                     measured_name="fine-tuned accuracy")


# --------------------------------------------------------------------------- attributions


def test_signed_overlay_limits_are_symmetric_at_the_clip_percentile():
    image = np.random.default_rng(RNG_SEED).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    attribution = np.random.default_rng(RNG_SEED).normal(0, 1, (16, 16))
    attribution[0, 0] = 100.0  # an outlier the clipping must ignore
    fig = attribution_overlay(image, attribution, signed=True, clip_percentile=95.0)
    picture, values = fig.data
    limit = np.percentile(np.abs(attribution), 95.0)
    assert values.zmax == pytest.approx(limit) and values.zmin == pytest.approx(-limit)
    assert limit < 10
    np.testing.assert_array_equal(_decoded(picture.source), attribution_picture(image, attribution, (-limit, limit), True, 0.6))
    np.testing.assert_allclose(values.z, attribution, rtol=1e-6)  # the values, for hovering and the colour bar
    assert values.opacity == 0 and values.showscale


def test_unsigned_overlay_shows_magnitudes_from_zero():
    image = np.zeros((4, 4, 3), np.uint8)
    attribution = -np.arange(16, dtype=float).reshape(4, 4)
    fig = attribution_overlay(image, attribution, signed=False, clip_percentile=100.0)
    overlay = fig.data[1]
    np.testing.assert_array_equal(overlay.z, np.abs(attribution))
    assert (overlay.zmin, overlay.zmax) == (0.0, 15.0)


@pytest.mark.parametrize("layout", ["chw", "hwc"])
def test_overlay_sums_the_channel_axis(layout):
    image = np.zeros((5, 6, 3), np.uint8)
    per_channel = np.random.default_rng(RNG_SEED).normal(size=(3, 5, 6))
    given = per_channel if layout == "chw" else per_channel.transpose(1, 2, 0)
    overlay = attribution_overlay(image, given).data[1]
    np.testing.assert_allclose(overlay.z, per_channel.sum(axis=0), rtol=1e-5)


def test_overlay_rejects_a_map_of_another_size():
    with pytest.raises(ValueError, match="does not match the image size 4×4"):
        attribution_overlay(np.zeros((4, 4, 3), np.uint8), np.ones((8, 8)))


def test_attribution_grid_places_each_map_in_its_cell():
    """Each cell is one picture (the map drawn over its photo here), at its place in the mosaic; one
    transparent grid of cells says on hover which model and probe a cell is and its colour range."""
    from depara_core.viz.display import MapDisplay
    from depara_core.viz.validate import attribution_limits, attribution_picture

    rng = np.random.default_rng(RNG_SEED)
    images = [rng.integers(0, 256, (6, 6, 3), dtype=np.uint8) for _ in range(2)]
    maps = [[rng.normal(size=(6, 6)) for _ in range(3)] for _ in range(2)]
    fig = attribution_grid(images, maps, ["probe A", "probe B"], ["alexnet", "vgg16", "resnet18"])
    pictures = [trace for trace in fig.data if trace.type == "image"]
    assert len(pictures) == 6
    step = 6 + 1  # cell and gap, in pixels of the mosaic
    for index, picture in enumerate(pictures):
        row, col = divmod(index, 3)
        assert (picture.x0, picture.y0) == (col * step, row * step)
        expected = attribution_picture(images[row], maps[row][col], attribution_limits(maps[row][col], True, 99.0), True, 0.6)
        np.testing.assert_array_equal(_decoded(picture.source), expected)
    (cells,) = [t for t in fig.data if t.type == "heatmap"]
    assert (cells.x0, cells.dx, cells.y0, cells.dy) == (2.5, step, 2.5, step) and cells.opacity == 0 and not cells.showscale
    assert cells.text[1][2].startswith("resnet18 · probe B<br>colours span -") and "%{text}" in cells.hovertemplate
    assert list(fig.layout.xaxis.ticktext) == ["alexnet", "vgg16", "resnet18"] and list(fig.layout.yaxis.ticktext) == ["probe A", "probe B"]
    assert list(fig.layout.xaxis.tickvals) == [2.5, 9.5, 16.5] and fig.layout.yaxis.scaleanchor == "x"
    alone = attribution_grid(images, maps, ["probe A", "probe B"], ["alexnet", "vgg16", "resnet18"], display=MapDisplay(view="map"))
    np.testing.assert_array_equal(_decoded(alone.data[0].source), attribution_picture(images[0], maps[0][0], attribution_limits(maps[0][0], True, 99.0), True, 1.0, over_photo=False))
    with pytest.raises(ValueError, match="row 1 has 2 maps for 3 columns"):
        attribution_grid(images, [maps[0], maps[1][:2]], ["probe A", "probe B"], ["alexnet", "vgg16", "resnet18"])


def test_a_picture_is_the_photo_where_the_map_is_zero_and_the_scale_s_end_where_it_saturates():
    """Checked against the colour scale's stops directly: zero is transparent on the signed scale,
    ±limit is its end colour laid over the photo at the opacity; a coarser map's cells are blocks."""
    from depara_core.viz.validate import SIGNED_ATTRIBUTION_COLORSCALE, attribution_picture

    photo = np.full((4, 4, 3), 100, np.uint8)
    shown = np.array([[0.0, 5.0], [-5.0, 9.0]])  # coarser: each value covers 2 × 2 pixels
    picture = attribution_picture(photo, shown, (-5.0, 5.0), True, 0.5)
    assert (picture[:2, :2] == 100).all()  # zero: the photo itself
    top = np.array([103, 0, 31], float)  # rgba(103,0,31,1): the scale's end, at opacity 0.5
    bottom = np.array([5, 48, 97], float)
    np.testing.assert_array_equal(picture[:2, 2:], np.broadcast_to(np.round(100 * 0.5 + top * 0.5), (2, 2, 3)))
    np.testing.assert_array_equal(picture[2:, :2], np.broadcast_to(np.round(100 * 0.5 + bottom * 0.5), (2, 2, 3)))
    np.testing.assert_array_equal(picture[2:, 2:], picture[:2, 2:])  # beyond the limit: saturated
    quarter = attribution_picture(photo, np.array([[2.5]]), (-5.0, 5.0), True, 1.0)  # at the 0.75 stop: rgba(214,96,77,0.85)
    np.testing.assert_array_equal(quarter[0, 0], np.round(100 * 0.15 + np.array([214, 96, 77]) * 0.85))
    assert SIGNED_ATTRIBUTION_COLORSCALE[3] == [0.75, "rgba(214,96,77,0.85)"]


@pytest.mark.skipif(not __import__("depara_core.session.report", fromlist=["x"]).static_export_available(), reason="needs kaleido with Chrome/Chromium")
def test_a_picture_matches_what_plotly_js_draws_for_the_heatmap_over_the_photo():
    """The independent check: plotly.js (through kaleido) draws the map as a heatmap over the photo;
    the picture made here has the same colours, pixel block by pixel block."""
    import plotly.io as pio

    from depara_core.viz.display import MapDisplay
    from depara_core.viz.validate import attribution_picture, attribution_traces

    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    amap = rng.normal(size=(4, 4))
    limits = (-1.5, 1.5)
    fig = go.Figure(attribution_traces(photo, amap, MapDisplay(opacity=0.6), False, limits))
    fig.update_layout(width=400, height=400, margin={"l": 0, "r": 0, "t": 0, "b": 0}, xaxis={"visible": False, "range": [-0.5, 3.5]},
                      yaxis={"visible": False, "range": [3.5, -0.5]}, plot_bgcolor="white", paper_bgcolor="white")  # fmt: skip
    from PIL import Image

    drawn = np.asarray(Image.open(io.BytesIO(pio.to_image(fig, format="png", width=400, height=400, scale=1))).convert("RGB")).astype(int)
    ours = attribution_picture(photo, amap, limits, True, 0.6).astype(int)
    centres = drawn[50::100, 50::100]  # the middle of each 100 × 100 block
    assert np.abs(centres - ours).max() <= 2


# --------------------------------------------------------------------------- input checks and config


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: similarity_heatmap(np.ones((2, 3)), ["a", "b"]), "must be square"),
        (lambda: similarity_heatmap(np.eye(3), ["a", "b"]), "2 labels for 3 rows"),
        (lambda: similarity_heatmap(np.array([[1.0, np.nan], [0.0, 1.0]]), ["a", "b"]), "NaN"),
        (lambda: similarity_heatmap(np.eye(2), ["a", "a"]), "unique"),
        (lambda: similarity_heatmap(np.eye(3), list("abc"), order=[0, 0, 1]), "exactly once"),
        (lambda: edge_heatmap(np.eye(3), ["p1", "p2"]), "2 probe ids for 3 rows"),
        (lambda: cluster_order(np.full((3, 3), np.inf)), "infinite"),
        (lambda: ranking_bar(["a", "b"], [0.1, np.nan]), "NaN"),
        (lambda: attribution_overlay(np.zeros((4, 4, 3)), np.ones((4, 4))), "uint8"),
    ],
)
def test_bad_inputs_raise_value_error_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_figure_config_exports_svg_under_the_given_name():
    config = figure_config("model_ranking.svg")
    assert config["toImageButtonOptions"] == {"format": "svg", "filename": "model_ranking"}
    assert figure_config("tree")["toImageButtonOptions"]["filename"] == "tree"


def test_figure_modules_import_no_torch_and_no_streamlit():
    """The runtime property, in a fresh interpreter (not a reading of the source)."""
    import subprocess
    import sys

    code = "import sys, depara_core.viz, depara_core.viz.plots, depara_core.viz.views; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'streamlit', 'torchvision'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


# ---- display choices -----------------------------------------------------------------------
def _decoded(source: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    assert source.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("RGB"))


def test_display_views_draw_what_they_say():
    from scipy.ndimage import gaussian_filter

    from depara_core.viz.display import MapDisplay

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    amap = rng.normal(size=(6, 6))
    only = attribution_overlay(image, amap, display=MapDisplay(view="map"))
    limits = (-np.percentile(np.abs(amap), 99.0), np.percentile(np.abs(amap), 99.0))
    assert [t.type for t in only.data] == ["image", "heatmap"]
    np.testing.assert_array_equal(_decoded(only.data[0].source), attribution_picture(image, amap, limits, True, 1.0, over_photo=False))  # no photo under it
    masked = attribution_overlay(image, amap, display=MapDisplay(view="masked", clip_percentile=100.0))
    assert [t.type for t in masked.data] == ["image"]
    expected = (image * np.clip(np.abs(amap) / np.abs(amap).max(), 0, 1)[..., None]).round().astype(np.uint8)
    np.testing.assert_array_equal(_decoded(masked.data[0].source), expected)  # sent as a PNG, losslessly
    smooth = attribution_overlay(image, amap, display=MapDisplay(view="map", smoothing=1.5, signed=False))
    np.testing.assert_allclose(np.asarray(smooth.data[1].z), gaussian_filter(np.abs(amap), 1.5, mode="nearest"), rtol=1e-5)
    blended = attribution_overlay(image, amap, display=MapDisplay(opacity=0.3))
    assert [t.type for t in blended.data] == ["image", "heatmap"]
    np.testing.assert_array_equal(_decoded(blended.data[0].source), attribution_picture(image, amap, limits, True, 0.3))


def test_one_colour_scale_across_the_grid():
    from depara_core.viz.display import MapDisplay

    img = np.zeros((4, 4, 3), np.uint8)
    maps = [[np.ones((4, 4)), 10 * np.ones((4, 4))]]
    own = attribution_grid([img], maps, ["p"], ["a", "b"], display=MapDisplay(clip_percentile=100.0))
    (cells,) = [t for t in own.data if t.type == "heatmap"]  # each cell its own range: no colour bar
    assert [t.split("colours span ")[1] for t in cells.text[0]] == ["-1 to 1", "-10 to 10"]
    shared = attribution_grid([img], maps, ["p"], ["a", "b"], display=MapDisplay(clip_percentile=100.0, shared_scale=True))
    heat = [t for t in shared.data if t.type == "heatmap"]
    assert [t.split("colours span ")[1] for t in heat[0].text[0]] == ["-10 to 10"] * 2
    bar = [t for t in heat if t.showscale]
    assert len(bar) == 1 and (bar[0].zmin, bar[0].zmax) == (-10.0, 10.0) and bar[0].opacity == 0
    pictures = [t for t in shared.data if t.type == "image"]
    assert not np.array_equal(_decoded(pictures[0].source), _decoded(pictures[1].source))  # 1 and 10 on one scale: not alike


@pytest.mark.parametrize("bad", [{"view": "xray"}, {"opacity": 1.5}, {"smoothing": -1}, {"clip_percentile": 0}])
def test_bad_display_choices_are_refused(bad):
    from depara_core.viz.display import MapDisplay

    with pytest.raises(plot_utils.PlotInputError):
        MapDisplay(**bad)


def test_left_margins_hold_the_longest_label_in_the_figure_itself():
    """Saved reports and static pictures do not recompute plotly.js's automatic margins: the figure
    carries room for its longest tick label (about 0.6 font sizes per character)."""
    from depara_core.viz.plots import label_margin, ranking_bar, tree_figure

    short, long = ["a", "b", "c"], ["a", "occlusion_edges#2", "c"]
    z = [[0, 1, 0.2, 2], [2, 3, 0.9, 3]]
    assert tree_figure(z, long).layout.margin.l >= 0.6 * 12 * len(long[1]) > tree_figure(z, short).layout.margin.l
    assert ranking_bar(long, [0.1, 0.9, 0.5]).layout.margin.l == label_margin(long)
    assert label_margin([]) > 0


def test_node_cosine_histogram_sends_shares_not_every_cosine():
    from depara_core.viz.plots import cosine_histogram

    rng = np.random.default_rng(0)
    matched, null = rng.normal(0.6, 0.1, 200), rng.normal(0.2, 0.1, 40_000)
    fig = cosine_histogram(matched, null, floor=0.35)
    bars = {t.name: t for t in fig.data}
    assert set(bars) == {"mismatched probes", "same probe"} and all(len(t.y) == 30 for t in fig.data)
    assert sum(bars["same probe"].y) == pytest.approx(1.0) and sum(bars["mismatched probes"].y) == pytest.approx(1.0)
    centre = np.asarray(bars["same probe"].x)[np.argmax(bars["same probe"].y)]
    assert abs(centre - 0.6) < 0.1 and len(fig.to_json()) < 20_000  # 40,200 cosines → a few kB


def test_a_coarser_map_is_stretched_over_the_photo_not_upsampled():
    photo = np.zeros((96, 96, 3), np.uint8)
    coarse = np.arange(32 * 32, dtype=float).reshape(32, 32)
    fig = attribution_overlay(photo, coarse)
    heat = fig.data[1]
    assert np.asarray(heat.z).shape == (32, 32) and (heat.dx, heat.dy, heat.x0, heat.y0) == (3.0, 3.0, 1.0, 1.0)  # block j covers pixels 3j..3j+2
    from depara_core.viz.display import MapDisplay

    masked = attribution_overlay(photo + 200, coarse, display=MapDisplay(view="masked", clip_percentile=100.0))
    assert _decoded(masked.data[0].source).shape == (96, 96, 3)  # the mask is brought to the photo's size
    with pytest.raises(ValueError, match="does not match the image size"):
        attribution_overlay(photo, np.ones((32, 48)))  # another aspect ratio is refused


def test_a_coarser_map_in_the_grid_is_stretched_over_its_own_cell():
    img = np.zeros((6, 6, 3), np.uint8)
    coarse = np.arange(9.0).reshape(3, 3)
    fig = attribution_grid([img, img], [[np.ones((6, 6)), np.ones((6, 6))], [np.ones((6, 6)), coarse]], ["p", "q"], ["a", "b"])
    cell = [t for t in fig.data if t.type == "image"][3]
    picture = _decoded(cell.source)
    assert (cell.x0, cell.y0) == (7, 7) and picture.shape == (6, 6, 3)  # pixels 7..12 of the mosaic, like the photo
    assert (picture[::2, ::2] == picture[1::2, 1::2]).all()  # each value of the map covers 2 × 2 pixels
    assert fig.layout.xaxis.range[1] == 2 * 7 - 1 - 0.5 and fig.layout.yaxis.range[0] == 2 * 7 - 1 - 0.5


def test_layer_scores_refuses_infinite_scores_and_a_recommended_layer_without_a_score():
    layers = ["a", "b"]
    with pytest.raises(plot_utils.PlotInputError, match="infinite"):
        layer_scores(layers, [0.1, 0.2], [0.2, 0.4], [np.inf, 0.5])
    with pytest.raises(plot_utils.PlotInputError, match="undefined at every point"):
        layer_scores(layers, [0.1, 0.2], [0.2, 0.4], [np.nan, np.nan])
    with pytest.raises(plot_utils.PlotInputError, match="has no s\\(λ\\) score"):
        layer_scores(layers, [0.1, 0.2], [0.2, 0.4], [np.nan, 0.5], best="a")
