"""Tests of the procedural scene generator and its targets."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest

from depara_core.probes.registry import builtin_probe_sets, load_builtin
from depara_core.probes.scenes import CLASS_NAMES, DEFAULT, SHIFTED, SceneBatch, SceneConfig, render_plans, render_scenes, sample_scene

SMALL = replace(DEFAULT, resolution=32)
SMALL_SHIFTED = replace(SHIFTED, resolution=32)
ARRAYS = [f.name for f in fields(SceneBatch) if f.name != "far"]


@pytest.fixture(scope="module")
def batch() -> SceneBatch:
    return render_scenes(24, SMALL, seed=11)


def _assert_batches_equal(a: SceneBatch, b: SceneBatch, rows: slice = slice(None)) -> None:
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name)[rows], getattr(b, name)[rows], err_msg=name)


def test_same_seed_gives_identical_scenes() -> None:
    _assert_batches_equal(render_scenes(5, SMALL, seed=3), render_scenes(5, SMALL, seed=3))
    assert not np.array_equal(render_scenes(3, SMALL, seed=3).rgb, render_scenes(3, SMALL, seed=4).rgb)


def test_scene_does_not_depend_on_count_or_chunking() -> None:
    ten = render_scenes(10, SMALL, seed=5)
    _assert_batches_equal(render_scenes(5, SMALL, seed=5), ten, slice(0, 5))
    tiny_chunks = render_scenes(10, replace(SMALL, chunk_pixels=3 * 32 * 32), seed=5)
    _assert_batches_equal(tiny_chunks, ten)


def test_shapes_dtypes_and_ranges(batch: SceneBatch) -> None:
    n, r = 24, 32
    expected = {
        "rgb": (n, r, r, 3), "depth": (n, r, r), "normals": (n, r, r, 3), "reshading": (n, r, r),
        "occlusion_edges": (n, r, r), "segmentation": (n, r, r), "instance_ids": (n, r, r),
        "curvature": (n, r, r), "albedo": (n, r, r, 3), "largest_class": (n,), "object_count": (n,),
        "light_direction": (n, 3),
    }
    for name, shape in expected.items():
        value = getattr(batch, name)
        assert value.shape == shape, name
        integer = name in ("segmentation", "instance_ids", "largest_class", "object_count")
        assert value.dtype == (np.int64 if integer else np.float32), name
        assert np.isfinite(value).all(), name
    for name in ("rgb", "albedo", "reshading"):
        assert getattr(batch, name).min() >= 0 and getattr(batch, name).max() <= 1, name
    assert set(np.unique(batch.occlusion_edges)) <= {0.0, 1.0}
    assert batch.depth.min() > 0 and batch.depth.max() <= batch.far
    assert batch.curvature.min() >= 0
    assert batch.rgb.std() > 0.05  # not a blank image
    assert len(batch) == n and batch.rgb_uint8().dtype == np.uint8


def test_other_resolutions_work() -> None:
    b = render_scenes(2, replace(DEFAULT, resolution=17), seed=1)
    assert b.rgb.shape == (2, 17, 17, 3) and b.segmentation.shape == (2, 17, 17)


def test_normals_are_unit_off_sky_and_zero_on_sky(batch: SceneBatch) -> None:
    length = np.linalg.norm(batch.normals, axis=-1)
    sky = batch.segmentation == 0
    np.testing.assert_allclose(length[~sky], 1, atol=1e-4)
    assert np.all(length[sky] == 0)
    # visible surfaces face the camera (z towards the viewer), up to perspective at the borders
    assert np.mean(batch.normals[..., 2][~sky] > 0) > 0.95


def test_ground_normals_follow_the_camera_pitch() -> None:
    plans = [sample_scene(SMALL, 2, i) for i in range(4)]
    b = render_plans(plans, SMALL)
    for i, plan in enumerate(plans):
        ground = b.segmentation[i] == 1
        expected = [0, np.cos(plan.pitch), np.sin(plan.pitch)]
        np.testing.assert_allclose(b.normals[i][ground], np.broadcast_to(expected, (ground.sum(), 3)), atol=1e-5)
        np.testing.assert_allclose(b.curvature[i][ground], 0)


def test_segmentation_classes_and_sky_depth(batch: SceneBatch) -> None:
    seg = batch.segmentation
    assert seg.min() >= 0 and seg.max() < len(CLASS_NAMES)
    far = batch.depth == batch.far
    np.testing.assert_array_equal(far, seg == 0)
    assert (seg == 1).any() and (seg >= 2).any() and (seg == 0).any()
    assert np.all(batch.reshading[seg == 0] == 0) and np.all(batch.reshading[seg != 0] >= 0.2)
    # instance ids agree with classes: 0 sky, 1 ground, objects from 2 up
    np.testing.assert_array_equal(np.minimum(batch.instance_ids, 2), np.minimum(seg, 2))


def test_sphere_curvature_is_inverse_radius() -> None:
    plans = [sample_scene(SMALL, 9, i) for i in range(12)]
    b = render_plans(plans, SMALL)
    checked = 0
    for i, plan in enumerate(plans):
        for slot in np.nonzero(plan.kinds == CLASS_NAMES.index("sphere"))[0]:
            mask = b.instance_ids[i] == 2 + slot
            if mask.any():
                np.testing.assert_allclose(b.curvature[i][mask], 1 / plan.objects[slot, 2], rtol=1e-5)
                checked += 1
    assert checked > 0


def _neighbour_pairs(a: np.ndarray):
    yield a[:, 1:, :], a[:, :-1, :], (slice(None), slice(1, None), slice(None)), (slice(None), slice(None, -1), slice(None))
    yield a[:, :, 1:], a[:, :, :-1], (slice(None), slice(None), slice(1, None)), (slice(None), slice(None), slice(None, -1))


def test_occlusion_edges_lie_on_instance_and_depth_boundaries(batch: SceneBatch) -> None:
    inst, depth, edges = batch.instance_ids, batch.depth, batch.occlusion_edges.astype(bool)
    boundary = np.zeros(inst.shape, bool)  # pixels with a farther (or equal) neighbour of another instance
    for (a, b, sa, sb) in _neighbour_pairs(inst):
        diff = a != b
        boundary[sa] |= diff & (depth[sa] <= depth[sb])
        boundary[sb] |= diff & (depth[sb] <= depth[sa])
        # every discontinuity is marked on at least one side
        assert np.all(edges[sa] | edges[sb] | ~diff)
    np.testing.assert_array_equal(edges, boundary)
    assert 0 < edges.mean() < 0.3


def test_largest_class_is_the_majority_object_class(batch: SceneBatch) -> None:
    for i in range(len(batch)):
        counts = np.bincount(batch.segmentation[i].ravel(), minlength=len(CLASS_NAMES))[2:]
        expected = int(np.argmax(counts)) + 2 if counts.max() > 0 else 1
        assert batch.largest_class[i] == expected


def test_object_count_is_the_number_of_visible_objects(batch: SceneBatch) -> None:
    for i in range(len(batch)):
        ids = np.unique(batch.instance_ids[i])
        assert batch.object_count[i] == np.sum(ids >= 2)
    assert batch.object_count.min() >= 1 and batch.object_count.max() <= SMALL.max_objects
    plans = [sample_scene(SMALL, 11, i) for i in range(len(batch))]
    placed = np.array([len(p.kinds) for p in plans])
    assert np.all(placed >= SMALL.min_objects) and np.all(placed <= SMALL.max_objects)
    assert np.all(batch.object_count <= placed) and batch.object_count.mean() > 0.8 * placed.mean()


def test_config_bounds_and_kinds_are_respected() -> None:
    cfg = replace(SMALL, min_objects=2, max_objects=2, kinds=("cone",))
    plans = [sample_scene(cfg, 0, i) for i in range(8)]
    assert all(len(p.kinds) == 2 and set(p.kinds) == {5} for p in plans)
    seg = render_plans(plans, cfg).segmentation
    assert set(np.unique(seg)) <= {0, 1, 5}
    empty = render_scenes(3, replace(SMALL, min_objects=0, max_objects=0))
    assert np.all(empty.object_count == 0) and np.all(empty.largest_class == 1)
    assert set(np.unique(empty.segmentation)) <= {0, 1}


@pytest.mark.parametrize(
    "bad",
    [dict(resolution=1), dict(min_objects=3, max_objects=2), dict(kinds=("torus",)), dict(kinds=()),
     dict(pitch_range=(30.0, 10.0)), dict(object_scale_range=(0.0, 1.0))],
)
def test_invalid_configs_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        SceneConfig(**bad)


def test_shifted_domain_differs_statistically() -> None:
    a, b = render_scenes(40, SMALL, seed=21), render_scenes(40, SMALL_SHIFTED, seed=21)
    assert b.rgb.mean() < 0.75 * a.rgb.mean()
    assert b.object_count.mean() > a.object_count.mean() + 1
    per_object_a = (a.segmentation >= 2).sum((1, 2)) / np.maximum(a.object_count, 1)
    per_object_b = (b.segmentation >= 2).sum((1, 2)) / np.maximum(b.object_count, 1)
    assert per_object_b.mean() < 0.6 * per_object_a.mean()
    hsv_sat = lambda x: (x.max(-1) - x.min(-1)) / np.maximum(x.max(-1), 1e-6)  # noqa: E731
    assert hsv_sat(b.albedo)[b.segmentation >= 2].mean() > hsv_sat(a.albedo)[a.segmentation >= 2].mean() + 0.1
    assert (b.segmentation == 0).mean() < (a.segmentation == 0).mean()  # steeper camera: less sky


def test_reshading_ignores_the_random_light_but_rgb_does_not() -> None:
    plans = [sample_scene(SMALL, 4, i) for i in range(6)]
    moved = [
        replace(p, light_direction=np.array([-p.light_direction[0], p.light_direction[1], -p.light_direction[2]]),
                light_intensity=p.light_intensity * 0.6)
        for p in plans
    ]
    a, b = render_plans(plans, SMALL), render_plans(moved, SMALL)
    for name in ("reshading", "depth", "normals", "segmentation", "occlusion_edges", "curvature", "albedo"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    lit = a.segmentation != 0
    assert np.abs(a.rgb - b.rgb).max(-1)[lit].mean() > 0.02
    assert not np.allclose(a.light_direction, b.light_direction)
    np.testing.assert_allclose(np.linalg.norm(a.light_direction, axis=1), 1, atol=1e-5)


def test_light_direction_matches_the_shading() -> None:
    """Surfaces facing the reported light are brighter, relative to their albedo, than those facing away."""
    b = render_scenes(12, replace(SMALL, shadows=False), seed=8)
    for i in range(len(b)):
        surf = b.segmentation[i] >= 1
        cos = b.normals[i][surf] @ b.light_direction[i]
        ratio = (b.rgb[i][surf].sum(-1) + 1e-3) / (b.albedo[i][surf].sum(-1) + 1e-3)
        if cos.std() > 0.05:
            assert np.corrcoef(cos, ratio)[0, 1] > 0.5


def test_builtin_probe_sets_are_registered() -> None:
    names = builtin_probe_sets()
    assert "scenes" in names and "scenes-shifted" in names
    probes = load_builtin("scenes", 4)
    assert probes.images.shape == (4, 64, 64, 3) and probes.ids[3] == "scenes-0003"
    assert probes.licence == "generated"
    expected = render_scenes(4, DEFAULT, seed=12345).rgb_uint8()
    np.testing.assert_array_equal(probes.images, expected)
    shifted = load_builtin("scenes-shifted", 3)
    assert shifted.digest != load_builtin("scenes", 3).digest
