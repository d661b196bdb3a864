"""Analytic ray casting for the procedural scenes: ray/primitive hits, normals and curvature.

The hit functions work on float32 arrays that broadcast to a common shape (M, P): M bundles of
P rays (one bundle per object); object parameters come as (M, 1) columns and a miss is
``np.inf``. Primitives rest on the ground plane y = 0 (y is up). :func:`render_chunk` casts
the rays of a list of scene plans and shades them.

>>> import numpy as np
>>> o = (np.zeros((1, 1), np.float32), np.ones((1, 1), np.float32), np.zeros((1, 1), np.float32))
>>> d = (np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32), np.ones((1, 1), np.float32))
>>> c = lambda v: np.full((1, 1), v, np.float32)
>>> t, part = hit_sphere(o, d, c(0.0), c(1.0), c(5.0), c(1.0))
>>> float(t[0, 0])
4.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from depara_core.probes.scenes import SceneConfig, ScenePlan

__all__ = [
    "Vec",
    "hit_sphere",
    "hit_cylinder",
    "hit_box",
    "hit_cone",
    "normal_sphere",
    "normal_cylinder",
    "normal_box",
    "normal_cone",
    "EPS",
    "render_chunk",
]

Vec = tuple[np.ndarray, np.ndarray, np.ndarray]
EPS = np.float32(1e-4)
_INF = np.float32(np.inf)


def _first_root(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both roots (lo <= hi) of a t^2 + 2 b t + c = 0 and whether they are real (a may be any sign)."""
    disc = b * b - a * c
    real = disc >= 0
    s = np.sqrt(np.maximum(disc, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = (-b - s) / a
        r2 = (-b + s) / a
    lo, hi = np.minimum(r1, r2), np.maximum(r1, r2)
    real &= np.isfinite(lo) & np.isfinite(hi)
    return lo, hi, real


def hit_sphere(o: Vec, d: Vec, cx: np.ndarray, cy: np.ndarray, cz: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, None]:
    """Nearest hit of unit rays with spheres of centre (cx, cy, cz) and radius r."""
    ox, oy, oz = o[0] - cx, o[1] - cy, o[2] - cz
    b = d[0] * ox + d[1] * oy + d[2] * oz
    c = ox * ox + oy * oy + oz * oz - r * r
    disc = b * b - c
    t = -b - np.sqrt(np.maximum(disc, 0))
    return np.where((disc >= 0) & (t > EPS), t, _INF), None


def hit_cylinder(
    o: Vec, d: Vec, cx: np.ndarray, cz: np.ndarray, r: np.ndarray, h: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Vertical cylinders (axis through (cx, cz), radius r, 0 <= y <= h); part 0 side, 1 top cap."""
    ox, oz = o[0] - cx, o[2] - cz
    a = d[0] * d[0] + d[2] * d[2]
    b = d[0] * ox + d[2] * oz
    c = ox * ox + oz * oz - r * r
    lo, _, real = _first_root(a, b, c)
    y = o[1] + lo * d[1]
    side = np.where(real & (lo > EPS) & (y >= 0) & (y <= h), lo, _INF)
    with np.errstate(divide="ignore", invalid="ignore"):
        tc = (h - o[1]) / d[1]
    qx, qz = ox + tc * d[0], oz + tc * d[2]
    cap = np.where((tc > EPS) & (o[1] > h) & (qx * qx + qz * qz <= r * r), tc, _INF)
    part = (cap < side).astype(np.int8)
    return np.minimum(side, cap), part


def _to_local(x: np.ndarray, z: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World (x, z) offsets to a frame rotated by yaw (cos, sin) about y."""
    return cos * x - sin * z, sin * x + cos * z


def hit_box(
    o: Vec, d: Vec, cx: np.ndarray, cz: np.ndarray, ax: np.ndarray, h: np.ndarray, az: np.ndarray,
    cos: np.ndarray, sin: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of half-extents (ax, az) and height h, turned about y by the angle with (cos, sin).

    The part is 2 * axis + 1 for the face on the positive side of that local axis, else 2 * axis.
    """
    lox, loz = _to_local(o[0] - cx, o[2] - cz, cos, sin)
    ldx, ldz = _to_local(d[0], d[2], cos, sin)
    near, far, axis = None, None, None
    with np.errstate(divide="ignore", invalid="ignore"):
        for k, (oo, dd, lo, hi) in enumerate(((lox, ldx, -ax, ax), (o[1], d[1], 0 * h, h), (loz, ldz, -az, az))):
            inv = np.float32(1) / dd
            t1, t2 = (lo - oo) * inv, (hi - oo) * inv
            tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
            # a ray parallel to a slab: inside it the slab never limits, outside it never hits
            inside = (oo >= lo) & (oo <= hi)
            tmin = np.where(np.isnan(tmin), np.where(inside, -_INF, _INF), tmin)
            tmax = np.where(np.isnan(tmax), np.where(inside, _INF, -_INF), tmax)
            face = (2 * k + (dd < 0)).astype(np.int8)  # entering through the +side when moving towards -
            if near is None:
                near, far, axis = tmin, tmax, np.broadcast_to(face, tmin.shape)
            else:
                axis = np.where(tmin > near, face, axis)
                near, far = np.maximum(near, tmin), np.minimum(far, tmax)
    t = np.where((near <= far) & (near > EPS), near, _INF)
    return t, axis.astype(np.int8)


def hit_cone(o: Vec, d: Vec, cx: np.ndarray, cz: np.ndarray, r: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, None]:
    """Upright cones (base radius r on the ground, apex at height h above (cx, cz))."""
    k2 = (r / h) ** 2
    qx, qy, qz = o[0] - cx, o[1] - h, o[2] - cz
    a = d[0] * d[0] + d[2] * d[2] - k2 * d[1] * d[1]
    b = qx * d[0] + qz * d[2] - k2 * qy * d[1]
    c = qx * qx + qz * qz - k2 * qy * qy
    lo, hi, real = _first_root(a, b, c)
    y_lo, y_hi = qy + lo * d[1], qy + hi * d[1]
    ok_lo = real & (lo > EPS) & (y_lo <= 0) & (y_lo >= -h)
    ok_hi = real & (hi > EPS) & (y_hi <= 0) & (y_hi >= -h)
    return np.where(ok_lo, lo, np.where(ok_hi, hi, _INF)), None


# ---- normals and mean curvature at hit points (flat arrays, one entry per pixel) -------------
def normal_sphere(p: Vec, cx: np.ndarray, cy: np.ndarray, cz: np.ndarray, r: np.ndarray) -> tuple[Vec, np.ndarray]:
    """Outward unit normal and mean curvature 1/r."""
    inv = np.float32(1) / r
    n = _unit(((p[0] - cx) * inv, (p[1] - cy) * inv, (p[2] - cz) * inv))
    return n, inv


def normal_cylinder(p: Vec, cx: np.ndarray, cz: np.ndarray, r: np.ndarray, part: np.ndarray) -> tuple[Vec, np.ndarray]:
    """Side: radial normal, mean curvature 1/(2r); top cap: up, flat."""
    top = part == 1
    side = _unit((p[0] - cx, np.zeros_like(r), p[2] - cz))
    n = (np.where(top, 0, side[0]), np.where(top, 1, side[1]), np.where(top, 0, side[2]))
    return tuple(a.astype(np.float32) for a in n), np.where(top, 0, np.float32(0.5) / r).astype(np.float32)


def normal_box(cos: np.ndarray, sin: np.ndarray, part: np.ndarray) -> tuple[Vec, np.ndarray]:
    """Face normal turned back to the world frame; boxes are flat."""
    axis, positive = part // 2, (part % 2) == 1
    s = np.where(positive, 1, -1).astype(np.float32)
    lx, ly, lz = s * (axis == 0), s * (axis == 1), s * (axis == 2)
    n = (cos * lx + sin * lz, ly.astype(np.float32), -sin * lx + cos * lz)
    return tuple(a.astype(np.float32) for a in n), np.zeros_like(cos)


def normal_cone(p: Vec, cx: np.ndarray, cz: np.ndarray, r: np.ndarray, h: np.ndarray) -> tuple[Vec, np.ndarray]:
    """Unit normal of the mantle and its mean curvature cos(half-angle) / (2 rho)."""
    k2 = (r / h) ** 2
    x, y, z = p[0] - cx, p[1] - h, p[2] - cz
    n = _unit((x, -k2 * y, z))
    rho = np.sqrt(x * x + z * z)
    curv = np.float32(0.5) / (np.sqrt(1 + k2) * np.maximum(rho, np.float32(1e-3)))
    return n, curv.astype(np.float32)


def _unit(v: Vec) -> Vec:
    norm = np.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    inv = np.float32(1) / np.maximum(norm, np.float32(1e-12))
    return v[0] * inv, v[1] * inv, v[2] * inv


# ---- rendering a chunk of scenes -----------------------------------------------------------
_F = np.float32
_CANONICAL_LIGHT = np.array([-0.35, 0.75, 0.55]) / np.linalg.norm([-0.35, 0.75, 0.55])
_MAX_CURVATURE = _F(10.0)
_SHADOW_OFFSET = _F(0.01)


def _hit(kind: int, o: Vec, d: Vec, prm: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Dispatch on the class id; ``prm`` columns are (cx, cz, a, b, c, cos, sin) as (M, 1) arrays."""
    cx, cz, a, b, c, cos, sin = (prm[:, i : i + 1] for i in range(7))
    if kind == 2:
        return hit_sphere(o, d, cx, a, cz, a)
    if kind == 3:
        return hit_cylinder(o, d, cx, cz, a, b)
    if kind == 4:
        return hit_box(o, d, cx, cz, a, b, c, cos, sin)
    return hit_cone(o, d, cx, cz, a, b)


def _normal(kind: int, p: Vec, prm: np.ndarray, part: np.ndarray) -> tuple[Vec, np.ndarray]:
    cx, cz, a, b, c, cos, sin = (prm[:, i] for i in range(7))
    if kind == 2:
        return normal_sphere(p, cx, a, cz, a)
    if kind == 3:
        return normal_cylinder(p, cx, cz, a, part)
    if kind == 4:
        return normal_box(cos, sin, part)
    return normal_cone(p, cx, cz, a, b)


def _ground_pattern(x: np.ndarray, z: np.ndarray, code: np.ndarray, scale: np.ndarray, angle: np.ndarray,
                    scene: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Texture value in [0, 1] at ground points: 0 plain, 1 checker, 2 stripes, 3 value noise.

    ``noise`` holds one periodic 8 x 8 grid of values per scene; ``scene`` says whose each point is.
    """
    fx, fz = x / scale, z / scale
    m = np.zeros_like(x)
    sel = code == 1
    m[sel] = (np.floor(fx[sel]) + np.floor(fz[sel])) % 2
    sel = code == 2
    m[sel] = np.floor(fx[sel] * angle[0][sel] + fz[sel] * angle[1][sel]) % 2
    sel = np.nonzero(code == 3)[0]
    if sel.size:
        gx, gz = fx[sel], fz[sel]
        ix, iz = np.floor(gx), np.floor(gz)
        tx, tz = gx - ix, gz - iz
        tx, tz = tx * tx * (3 - 2 * tx), tz * tz * (3 - 2 * tz)
        i0, k0 = ix.astype(np.int64) % 8, iz.astype(np.int64) % 8
        i1, k1 = (i0 + 1) % 8, (k0 + 1) % 8
        base, flat = scene[sel] * 64, noise.reshape(-1)
        top = flat[base + k0 * 8 + i0] * (1 - tx) + flat[base + k0 * 8 + i1] * tx
        bottom = flat[base + k1 * 8 + i0] * (1 - tx) + flat[base + k1 * 8 + i1] * tx
        m[sel] = top * (1 - tz) + bottom * tz
    return m


def _stack(plans: list[ScenePlan]) -> dict[str, np.ndarray]:
    """Per-scene parameters as arrays; object slots padded to the longest list (kind -1)."""
    k = max((len(p.kinds) for p in plans), default=0)
    kinds = np.full((len(plans), k), -1, np.int64)
    prm = np.zeros((len(plans), k, 7), _F)
    colours = np.zeros((len(plans), k, 3), _F)
    for i, p in enumerate(plans):
        n = len(p.kinds)
        kinds[i, :n] = p.kinds
        prm[i, :n, :5] = p.objects[:, :5]
        prm[i, :n, 5], prm[i, :n, 6] = np.cos(p.objects[:, 5]), np.sin(p.objects[:, 5])
        colours[i, :n] = p.colours
    col = lambda values: np.array(values, _F)[:, None]  # noqa: E731
    return {
        "kinds": kinds, "prm": prm, "colours": colours,
        "h": col([p.camera_height for p in plans]),
        "cp": col([np.cos(p.pitch) for p in plans]), "sp": col([np.sin(p.pitch) for p in plans]),
        "light": np.array([p.light_direction for p in plans], _F),
        "intensity": col([p.light_intensity for p in plans]), "ambient": col([p.ambient for p in plans]),
        "sky": np.array([p.sky for p in plans], _F), "ground": np.array([p.ground for p in plans], _F),
        "texture": np.array([p.texture for p in plans], np.int64),
        "tex_scale": np.array([p.texture_scale for p in plans], _F),
        "tex_dir": np.array([[np.cos(p.texture_angle), np.sin(p.texture_angle)] for p in plans], _F).T,
        "noise": np.array([p.noise for p in plans], _F).reshape(len(plans), 8, 8),
    }


def _occlusion_edges(inst: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """1 on the nearer pixel of every 4-neighbour pair whose instance ids differ."""
    edge = np.zeros(inst.shape, bool)
    for axis in (1, 2):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[axis], b[axis] = slice(1, None), slice(None, -1)
        a, b = tuple(a), tuple(b)
        diff = inst[a] != inst[b]
        edge[a] |= diff & (depth[a] <= depth[b])
        edge[b] |= diff & (depth[b] <= depth[a])
    return edge


def render_chunk(plans: list[ScenePlan], config: SceneConfig) -> dict[str, np.ndarray]:
    """Ray-cast a list of scene plans at ``config.resolution``; arrays are (B, H * W, ...)."""
    nb, res = len(plans), config.resolution
    s = _stack(plans)
    h, cp, sp, kinds, prm = s["h"], s["cp"], s["sp"], s["kinds"], s["prm"]
    tan = np.tan(np.radians(config.fov) / 2)
    c = (np.arange(res) + 0.5) / res * 2 - 1
    u, v = np.tile(c, res) * tan, np.repeat(-c, res) * tan
    norm = np.sqrt(u * u + v * v + 1)
    gx, gy, gz = (np.asarray(a / norm, _F)[None, :] for a in (u, v, np.ones_like(u)))
    dx, dy, dz = gx, gy * cp - gz * sp, gy * sp + gz * cp
    zero = np.zeros_like(h)

    # primary rays: nearest object per slot, then z-buffer against the ground and the far plane
    nk = kinds.shape[1]
    t_obj = np.full((nb, max(nk, 1), res * res), np.inf, _F)
    parts = np.zeros(t_obj.shape, np.int8)
    for kind in range(2, 6):
        bi, ki = np.nonzero(kinds == kind)
        if bi.size:
            t, part = _hit(kind, (zero[bi], h[bi], zero[bi]), (dx, dy[bi], dz[bi]), prm[bi, ki])
            t_obj[bi, ki] = t
            if part is not None:
                parts[bi, ki] = part
    slot = t_obj.argmin(1)
    t_near = np.take_along_axis(t_obj, slot[:, None], 1)[:, 0]
    with np.errstate(divide="ignore"):
        t_ground = np.where(dy < 0, -h / np.minimum(dy, _F(-1e-12)), _F(np.inf)).astype(_F)
    t = np.minimum(t_near, t_ground)
    depth = t * gz
    sky = ~(depth < config.far)
    inst = np.where(sky, 0, np.where(t_near < t_ground, 2 + slot, 1))
    depth = np.where(sky, _F(config.far), depth)
    t = np.where(sky, 0, t)
    px, py, pz = dx * t, h + dy * t, dz * t

    # normals, curvature and albedo
    nx, ny, nz = (np.zeros((nb, res * res), _F) for _ in range(3))
    curv = np.zeros((nb, res * res), _F)
    albedo = np.zeros((nb, res * res, 3), _F)
    ground = inst == 1
    ny[ground] = 1
    ob, op = np.nonzero(inst >= 2)
    os_ = inst[ob, op] - 2
    okind = kinds[ob, os_]
    albedo[ob, op] = s["colours"][ob, os_]
    for kind in range(2, 6):
        sel = okind == kind
        if sel.any():
            b, q, k = ob[sel], op[sel], os_[sel]
            n, cv = _normal(kind, (px[b, q], py[b, q], pz[b, q]), prm[b, k], parts[b, k, q])
            nx[b, q], ny[b, q], nz[b, q] = n
            curv[b, q] = np.minimum(cv, _MAX_CURVATURE)
    gb, gp = np.nonzero(ground)
    scale = s["tex_scale"][gb]
    m = _ground_pattern(px[gb, gp], pz[gb, gp], s["texture"][gb], scale, s["tex_dir"][:, gb], gb, s["noise"])
    footprint = t[gb, gp] * _F(2 * tan / res) / np.maximum(-dy[gb, gp], _F(1e-3))
    m = (m - _F(0.5)) * np.clip(2 - 2 * footprint / scale, 0, 1) + _F(0.5)
    m = np.where(s["texture"][gb] == 0, 0, m).astype(_F)
    g0, g1 = s["ground"][gb, 0], s["ground"][gb, 1]
    albedo[gb, gp] = g0 + (g1 - g0) * m[:, None]
    sky_mix = np.sqrt(np.clip(dy, 0, 1))[..., None]
    sky_rgb = s["sky"][:, None, 0] + (s["sky"][:, None, 1] - s["sky"][:, None, 0]) * sky_mix
    albedo = np.where(sky[..., None], sky_rgb, albedo)

    # lighting with the random light, optional hard shadows, distance fog
    lx, ly, lz = (s["light"][:, i : i + 1] for i in range(3))
    lit = np.maximum(nx * lx + ny * ly + nz * lz, 0)
    if config.shadows and nk:
        qx, qy, qz = px + _SHADOW_OFFSET * nx, py + _SHADOW_OFFSET * ny, pz + _SHADOW_OFFSET * nz
        blocked = np.zeros((nb, nk, res * res), bool)
        for kind in range(2, 6):
            bi, ki = np.nonzero(kinds == kind)
            if bi.size:
                ts, _ = _hit(kind, (qx[bi], qy[bi], qz[bi]), (lx[bi], ly[bi], lz[bi]), prm[bi, ki])
                blocked[bi, ki] = ts < np.inf
        lit = np.where(blocked.any(1), 0, lit)
    shade = s["ambient"] + s["intensity"] * lit
    sky_gain = np.clip(0.35 + 0.6 * s["intensity"] + s["ambient"], 0.3, 1.0).astype(_F)
    fog = (np.clip((depth - _F(0.5 * config.far)) / _F(0.5 * config.far), 0, 1) ** 2)[..., None]
    horizon = (s["sky"][:, 0] * sky_gain)[:, None, :]
    rgb = (albedo * shade[..., None]) * (1 - fog) + horizon * fog
    rgb = np.where(sky[..., None], albedo * sky_gain[..., None], rgb)

    # camera-space quantities: x right, y up, z towards the viewer
    ncx, ncy, ncz = nx, ny * cp + nz * sp, ny * sp - nz * cp
    lc = np.stack([lx[:, 0], ly[:, 0] * cp[:, 0] + lz[:, 0] * sp[:, 0], ly[:, 0] * sp[:, 0] - lz[:, 0] * cp[:, 0]], 1)
    l0 = _CANONICAL_LIGHT.astype(_F)
    reshading = np.where(sky, 0, _F(0.2) + _F(0.8) * np.maximum(ncx * l0[0] + ncy * l0[1] + ncz * l0[2], 0))
    seg = np.where(inst >= 2, np.take_along_axis(np.c_[kinds, np.zeros((nb, 1), np.int64)], np.maximum(inst - 2, 0), 1), inst)
    grid = (nb, res, res)
    edges = _occlusion_edges(inst.reshape(grid), depth.reshape(grid))
    return {
        "rgb": np.clip(rgb, 0, 1).astype(_F), "depth": depth.astype(_F), "normals": np.stack([ncx, ncy, ncz], -1),
        "reshading": reshading.astype(_F), "occlusion_edges": edges.astype(_F), "segmentation": seg,
        "instance_ids": inst.astype(np.int64), "curvature": curv, "albedo": albedo.astype(_F),
        "light_direction": lc.astype(_F),
    }
