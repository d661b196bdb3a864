"""Procedural 3-D scenes with dense and image-level targets, for training a zoo of task networks.

Each scene is a textured ground plane under a sky gradient with a few spheres, cylinders, boxes
and cones, ray-cast analytically per pixel (vectorised over whole batches) and lit by a random
light. Besides the image, every scene comes with depth, surface normals, shading under a fixed
light, occlusion edges, segmentation, curvature, albedo and image-level labels.

>>> batch = render_scenes(4, SceneConfig(resolution=32), seed=0)
>>> batch.rgb.shape, batch.segmentation.shape, batch.object_count.shape
((4, 32, 32, 3), (4, 32, 32), (4,))
>>> bool(np.array_equal(batch.rgb[2], render_scenes(3, SceneConfig(resolution=32)).rgb[2]))
True

Camera space is x right, y up, z towards the viewer; ``depth`` is metric distance along the
optical axis, with sky (and ground beyond ``far``) at ``config.far``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from depara_core.probes.probeset import ProbeSet
from depara_core.probes.scene_geometry import render_chunk

__all__ = [
    "SceneConfig",
    "ScenePlan",
    "SceneBatch",
    "DEFAULT",
    "SHIFTED",
    "KINDS",
    "CLASS_NAMES",
    "sample_scene",
    "render_plans",
    "render_scenes",
    "scene_probes",
    "default_scene_probes",
    "shifted_scene_probes",
]

CLASS_NAMES = ("sky", "ground", "sphere", "cylinder", "box", "cone")
KINDS = CLASS_NAMES[2:]
_TEXTURES = ("plain", "checker", "stripes", "noise")
Range = tuple[float, float]
# object sizes per class id, as multiples of the object scale: base + span * U(0, 1) for
# (radius or half-width, height, half-depth); spheres use the first only
_SIZE_BASE = np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0], [0.5, 1, 0], [0.5, 1, 0.5], [0.6, 1.5, 0]])
_SIZE_SPAN = np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0], [0.4, 1.5, 0], [0.5, 1, 0.5], [0.4, 1.5, 0]])


@dataclass(frozen=True)
class SceneConfig:
    """What the scenes look like; angles in degrees, lengths in metres, colours as HSV fractions.

    Ranges are (low, high) for uniform draws per scene (per object for object properties).
    ``pitch_range`` tilts the camera down from the horizon; ``object_scale_range`` sets the
    object size (sphere radius, other shapes proportional); ``distance_range`` bounds how far
    objects stand, clipped to the visible ground; ``saturation_range`` and ``value_range`` give
    the object colours. ``far`` is the depth of sky and of ground beyond it; ``chunk_pixels``
    bounds the work array size (it changes the speed, never the result).
    """

    resolution: int = 64
    min_objects: int = 1
    max_objects: int = 5
    kinds: tuple[str, ...] = KINDS
    textured_ground: bool = True
    shadows: bool = True
    fov: float = 60.0
    pitch_range: Range = (6.0, 26.0)
    camera_height_range: Range = (1.2, 2.0)
    light_intensity_range: Range = (0.75, 1.05)
    ambient_range: Range = (0.18, 0.32)
    light_elevation_range: Range = (20.0, 75.0)
    saturation_range: Range = (0.35, 0.8)
    value_range: Range = (0.5, 0.95)
    object_scale_range: Range = (0.35, 0.85)
    distance_range: Range = (2.0, 10.0)
    far: float = 40.0
    chunk_pixels: int = 1 << 17

    def __post_init__(self) -> None:
        if self.resolution < 2:
            raise ValueError(f"resolution must be >= 2, got {self.resolution}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 0 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        unknown = set(self.kinds) - set(KINDS)
        if not self.kinds or unknown:
            raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {self.kinds}")
        if not 0 < self.fov < 170:
            raise ValueError(f"fov must lie in (0, 170) degrees, got {self.fov}")
        for name in ("pitch_range", "camera_height_range", "light_intensity_range", "ambient_range",
                     "light_elevation_range", "saturation_range", "value_range", "object_scale_range",
                     "distance_range"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"{name} must be (low, high) with low <= high, got {(lo, hi)}")
        if self.camera_height_range[0] <= 0 or self.object_scale_range[0] <= 0 or self.far <= 0:
            raise ValueError("camera heights, object scales and far must be positive")


@dataclass(frozen=True, eq=False)
class ScenePlan:
    """The random parameters of one scene (world frame: y up, camera at (0, h, 0) looking along +z).

    ``objects`` rows are (cx, cz, size_a, size_b, size_c, yaw): sphere radius; cylinder radius and
    height; box half-width, height, half-depth; cone base radius and height. ``kinds`` are class ids.
    """

    camera_height: float
    pitch: float
    light_direction: np.ndarray
    light_intensity: float
    ambient: float
    sky: np.ndarray
    ground: np.ndarray
    texture: int
    texture_scale: float
    texture_angle: float
    noise: np.ndarray
    kinds: np.ndarray
    objects: np.ndarray
    colours: np.ndarray


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """HSV (each (n,) in [0, 1]) to RGB (n, 3)."""
    k = (_HSV_OFFSETS + h[:, None] * 6) % 6
    return v[:, None] * (1 - s[:, None] * np.minimum(np.maximum(np.minimum(k, 4 - k), 0), 1))


_HSV_OFFSETS = np.array([5.0, 3.0, 1.0])


def sample_scene(config: SceneConfig, seed: int, index: int) -> ScenePlan:
    """The plan of scene ``index``, drawn from ``np.random.default_rng([seed, index])``."""
    rng = np.random.default_rng([seed, index])
    u = lambda r: float(rng.uniform(*r))  # noqa: E731
    height, pitch = u(config.camera_height_range), np.radians(u(config.pitch_range))
    elev, azim = np.radians(u(config.light_elevation_range)), rng.uniform(0, 2 * np.pi)
    light = np.array([np.cos(elev) * np.sin(azim), np.sin(elev), np.cos(elev) * np.cos(azim)])
    sky = np.array([[0.80, 0.86, 0.92], [0.32, 0.52, 0.85]]) + rng.uniform(-0.07, 0.07, (2, 3))
    g_hsv = np.array([rng.uniform(0.05, 0.35), rng.uniform(0.1, 0.5), rng.uniform(0.35, 0.75)])
    ground = _hsv_to_rgb(np.full(2, g_hsv[0]), np.full(2, g_hsv[1]), g_hsv[2] * np.array([1.0, rng.uniform(0.5, 0.8)]))
    texture = int(rng.integers(1, len(_TEXTURES))) if config.textured_ground else 0
    tex_scale, tex_angle = u((0.4, 1.6)), rng.uniform(0, np.pi)
    noise = rng.random((8, 8)).astype(np.float32)

    n = int(rng.integers(config.min_objects, config.max_objects + 1))
    kinds = rng.choice([KINDS.index(k) + 2 for k in config.kinds], size=n)
    scale = rng.uniform(*config.object_scale_range, size=n)
    sizes = scale[:, None] * (_SIZE_BASE[kinds] + _SIZE_SPAN[kinds] * rng.random((n, 3)))
    footprint = np.where(kinds == 4, np.hypot(sizes[:, 0], sizes[:, 2]), sizes[:, 0])
    yaw = rng.uniform(0, np.pi / 2, n)
    xz = _place(rng, config, height, pitch, footprint)
    hue, sat, val = rng.random(n), rng.uniform(*config.saturation_range, n), rng.uniform(*config.value_range, n)
    return ScenePlan(
        height, float(pitch), light, u(config.light_intensity_range), u(config.ambient_range), np.clip(sky, 0, 1),
        ground, texture, tex_scale, float(tex_angle), noise, kinds.astype(np.int64),
        np.column_stack([xz, sizes, yaw]), _hsv_to_rgb(hue, sat, val),
    )


def _place(rng: np.random.Generator, config: SceneConfig, height: float, pitch: float, footprint: np.ndarray) -> np.ndarray:
    """Ground positions (x, z) inside the view, log-uniform in distance, avoiding overlaps where possible."""
    half = np.radians(config.fov) / 2
    near = height / np.tan(pitch + half) if pitch + half < np.pi / 2 else 0.0
    far = height / np.tan(pitch - half) if pitch > half else np.inf
    lo, hi = max(config.distance_range[0], near + 0.3), min(config.distance_range[1], far)
    if hi < lo + 0.5:
        lo, hi = near + 0.3, max(near + 1.0, min(far, config.distance_range[1]))
    tries = 12
    z = np.exp(rng.uniform(np.log(lo), np.log(hi), (len(footprint), tries)))
    reach = (z * np.cos(pitch) + height * np.sin(pitch)) * np.tan(half) * 0.8
    x = rng.uniform(-1, 1, z.shape) * reach
    placed = np.zeros((len(footprint), 2))
    for i, rad in enumerate(footprint):
        placed[i] = x[i, -1], z[i, -1]
        for j in range(tries):
            gap = np.hypot(placed[:i, 0] - x[i, j], placed[:i, 1] - z[i, j]) - footprint[:i] - rad
            if gap.size == 0 or gap.min() > 0.05:
                placed[i] = x[i, j], z[i, j]
                break
    return placed


DEFAULT = SceneConfig()
# a domain shift: more, smaller, saturated objects, plain ground, a steeper camera and low light
SHIFTED = SceneConfig(
    min_objects=3,
    max_objects=7,
    object_scale_range=(0.18, 0.42),
    saturation_range=(0.85, 1.0),
    value_range=(0.7, 1.0),
    textured_ground=False,
    pitch_range=(28.0, 45.0),
    light_intensity_range=(0.25, 0.5),
    ambient_range=(0.06, 0.14),
)


@dataclass(frozen=True, eq=False)
class SceneBatch:
    """Rendered scenes and their targets; arrays are float32 (N, H, W, ...) unless noted.

    ``rgb`` (N,H,W,3) in [0, 1]; ``depth`` (N,H,W) metric camera depth, sky at ``far``;
    ``normals`` (N,H,W,3) unit camera-space normals (zero on sky); ``reshading`` (N,H,W) in [0, 1]
    shading under a fixed camera-space light (zero on sky); ``occlusion_edges`` (N,H,W) {0, 1}
    on the nearer side of instance boundaries; ``segmentation`` (N,H,W) int64 class ids (see
    ``CLASS_NAMES``); ``instance_ids`` (N,H,W) int64 (0 sky, 1 ground, 2 + object slot);
    ``curvature`` (N,H,W) mean curvature in 1/m (0 on planes and sky); ``albedo`` (N,H,W,3)
    unlit base colour; ``largest_class`` (N,) int64 object class covering most pixels (1 when no
    object is visible); ``object_count`` (N,) int64 visible objects; ``light_direction`` (N,3)
    unit camera-space direction towards the random light.
    """

    rgb: np.ndarray
    depth: np.ndarray
    normals: np.ndarray
    reshading: np.ndarray
    occlusion_edges: np.ndarray
    segmentation: np.ndarray
    instance_ids: np.ndarray
    curvature: np.ndarray
    albedo: np.ndarray
    largest_class: np.ndarray
    object_count: np.ndarray
    light_direction: np.ndarray
    far: float = field(default=DEFAULT.far)

    def __len__(self) -> int:
        return int(self.rgb.shape[0])

    def rgb_uint8(self) -> np.ndarray:
        """The images as uint8 (N, H, W, 3)."""
        return np.round(self.rgb * 255).astype(np.uint8)


def render_plans(plans: list[ScenePlan], config: SceneConfig = DEFAULT) -> SceneBatch:
    """Render sampled scene plans (e.g. with a changed light) as one batch."""
    n, res = len(plans), config.resolution
    shapes = {
        "rgb": (n, res, res, 3), "depth": (n, res, res), "normals": (n, res, res, 3), "reshading": (n, res, res),
        "occlusion_edges": (n, res, res), "curvature": (n, res, res), "albedo": (n, res, res, 3),
    }
    out = {k: np.empty(s, np.float32) for k, s in shapes.items()}
    out["segmentation"] = np.empty((n, res, res), np.int64)
    out["instance_ids"] = np.empty((n, res, res), np.int64)
    out["light_direction"] = np.empty((n, 3), np.float32)
    step = max(1, config.chunk_pixels // (res * res))
    for start in range(0, n, step):
        chunk = render_chunk(plans[start : start + step], config)
        for key, value in chunk.items():
            out[key][start : start + step] = value.reshape(out[key][start : start + step].shape)
    seg, inst = out["segmentation"].reshape(n, -1), out["instance_ids"].reshape(n, -1)
    counts = np.stack([(seg == c).sum(1) for c in range(2, len(CLASS_NAMES))], axis=1)
    largest = np.where(counts.max(1) > 0, counts.argmax(1) + 2, 1).astype(np.int64)
    slots = max((len(p.kinds) for p in plans), default=0)
    visible = np.stack([(inst == 2 + k).any(1) for k in range(slots)], axis=1) if slots else np.zeros((n, 0), bool)
    return SceneBatch(**out, largest_class=largest, object_count=visible.sum(1).astype(np.int64), far=config.far)


def render_scenes(count: int, config: SceneConfig = DEFAULT, seed: int = 0) -> SceneBatch:
    """``count`` scenes; scene i depends only on (config, seed, i), not on ``count``."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return render_plans([sample_scene(config, seed, i) for i in range(count)], config)


def scene_probes(count: int, config: SceneConfig = DEFAULT, seed: int = 12345, name: str = "scenes") -> ProbeSet:
    """Rendered scenes as a probe set with ids ``{name}-0000``, ``{name}-0001``, ..."""
    images = render_scenes(count, config, seed).rgb_uint8()
    return ProbeSet(images, tuple(f"{name}-{i:04d}" for i in range(count)), name, "generated")


def default_scene_probes(count: int) -> ProbeSet:
    """The ``scenes`` probe set: ``count`` scenes of the default domain at 64x64 (seed 12345)."""
    return scene_probes(count, replace(DEFAULT, resolution=64), 12345, "scenes")


def shifted_scene_probes(count: int) -> ProbeSet:
    """The ``scenes-shifted`` probe set: the shifted domain at 64x64 (seed 54321)."""
    return scene_probes(count, replace(SHIFTED, resolution=64), 54321, "scenes-shifted")
