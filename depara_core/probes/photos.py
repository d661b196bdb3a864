"""The "photos" probe set: natural photographs shipped inside installed Python packages.

The sample images of scikit-image, scikit-learn and matplotlib are read from their package
folders (nothing is fetched), converted to RGB and expanded into ``count`` probes: the first
round is a centre square of each photo, later ones are seeded random square crops (0.3 to 1
of the shorter side), half of them flipped horizontally, all resized to ``size`` x ``size``.
Only photos whose licence is stated (CC0, public domain or CC-BY 2.0) are used.

>>> p = natural_photos(count=12, size=64)
>>> len(p), p.size, p.ids[1]
(12, (64, 64), 'photos-0001-coffee')
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image

from depara_core.errors import ProbeError
from depara_core.probes.probeset import MIN_PROBES, ProbeSet, decode_image
from depara_core.resources import package_file

__all__ = ["ATTRIBUTIONS", "SOURCES", "natural_photos", "available_photos", "decoded_photos", "square_crop"]

_SKIMAGE_CC0 = "CC0 by the photographer"

SOURCES: dict[str, tuple[str, str]] = {
    # key: (package, path inside the package); colour photos first, so small sets stay colourful.
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "astronaut": ("skimage", "data/astronaut.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg"),
    "retina": ("skimage", "data/retina.jpg"),
    "camera": ("skimage", "data/camera.png"),
    "coins": ("skimage", "data/coins.png"),
    "grass": ("skimage", "data/grass.png"),
    "gravel": ("skimage", "data/gravel.png"),
    "brick": ("skimage", "data/brick.png"),
}
"""Where each photo lives: the package that ships it and its path inside that package."""

ATTRIBUTIONS: dict[str, str] = {
    "chelsea": f"Chelsea the cat (scikit-image): {_SKIMAGE_CC0} (Stefan van der Walt)",
    "coffee": f"coffee cup (scikit-image), courtesy of Pikolo Espresso Bar: {_SKIMAGE_CC0} (Rachel Michetti)",
    "astronaut": "astronaut Eileen Collins (scikit-image), NASA: public domain",
    "rocket": "launch of DSCOVR on Falcon 9 (scikit-image), SpaceX: public domain",
    "china": (
        "china.jpg (scikit-learn): CC-BY 2.0 (https://creativecommons.org/licenses/by/2.0/), "
        "some rights reserved by danielbuechele (https://www.flickr.com/photos/danielbuechele/6061409035/)"
    ),
    "flower": (
        "flower.jpg (scikit-learn): CC-BY 2.0 (https://creativecommons.org/licenses/by/2.0/), "
        "attributed by scikit-learn to danielbuechele; photo page https://www.flickr.com/photos/vultilion/6056698931/"
    ),
    "grace_hopper": "Grace Hopper (matplotlib sample data), U.S. Navy portrait: public domain",
    "hubble_deep_field": "Hubble eXtreme Deep Field (scikit-image), NASA: public domain",
    "retina": "fundus photograph of a retina (scikit-image), Mikael Häggström: CC0 1.0",
    "camera": f"camera man (scikit-image): {_SKIMAGE_CC0} (Lav Varshney)",
    "coins": "Greek coins from Pompeii (scikit-image), Brooklyn Museum: no known copyright restrictions",
    "grass": "grass (scikit-image): CC0",
    "gravel": "gravel (scikit-image), CC0Textures: CC0",
    "brick": "brick wall (scikit-image), CC0Textures: CC0",
}
"""Licence and attribution of every photo, as stated by the package that ships it."""


def available_photos() -> dict[str, Path]:
    """The photos present on this machine: key -> file (missing packages or files are skipped)."""
    out: dict[str, Path] = {}
    for key, (package, rel) in SOURCES.items():
        path = package_file(package, rel)
        if path is not None and path.is_file():
            out[key] = path
    return out


@functools.lru_cache(maxsize=4)
def _decoded(paths: tuple[tuple[str, Path], ...]) -> tuple[tuple[str, np.ndarray], ...]:
    out = []
    for key, path in paths:
        rgb, _ = decode_image(path.read_bytes(), path.name)
        rgb.setflags(write=False)
        out.append((key, rgb))
    return tuple(out)


def decoded_photos() -> tuple[tuple[str, np.ndarray], ...]:
    """(key, read-only RGB array) of every available photo, decoded once per process."""
    return _decoded(tuple(available_photos().items()))


def square_crop(rgb: np.ndarray, box: tuple[float, float, float, float], size: int, flip: bool = False) -> np.ndarray:
    """The (left, top, right, bottom) ``box`` of ``rgb`` resampled to ``size`` x ``size`` (bicubic), mirrored if ``flip``."""
    im = Image.fromarray(rgb).resize((size, size), Image.Resampling.BICUBIC, box=box)
    if flip:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(im, dtype=np.uint8)


def natural_photos(count: int = 200, size: int = 224, seed: int = 0) -> ProbeSet:
    """``count`` probes of ``size`` x ``size`` cut from the photos in installed packages, seeded.

    Ids read ``photos-NNNN-<photo>``; the licence field lists the attribution of every photo used.
    """
    if count < MIN_PROBES:
        raise ProbeError(f"{count} probes were asked for; DEPARA needs at least {MIN_PROBES}", f"ask for {MIN_PROBES} or more")
    if size < 8:
        raise ProbeError(f"probe size {size} is too small", "use a size of 8 pixels or more (224 suits ImageNet models)")
    photos = decoded_photos()
    if not photos:
        raise ProbeError(
            "none of the sample photos of scikit-image, scikit-learn or matplotlib is installed",
            "pip install scikit-image scikit-learn matplotlib, or use another probe set",
        )
    rng = np.random.default_rng(seed)
    images = np.empty((count, size, size, 3), np.uint8)
    ids: list[str] = []
    for i in range(count):
        key, rgb = photos[i % len(photos)]
        h, w = rgb.shape[:2]
        short = min(h, w)
        if i < len(photos):  # first round: the centre square of every photo
            side, top, left, flip = float(short), (h - short) / 2, (w - short) / 2, False
        else:
            side = rng.uniform(0.3, 1.0) * short
            top, left = rng.uniform(0, h - side), rng.uniform(0, w - side)
            flip = bool(rng.random() < 0.5)
        images[i] = square_crop(rgb, (left, top, left + side, top + side), size, flip)
        ids.append(f"photos-{i:04d}-{key}")
    used = [key for key, _ in photos[: min(count, len(photos))]]
    licence = "; ".join(ATTRIBUTIONS[k] for k in used)
    notes = (f"{len(used)} photos from installed packages, {count} crops of {size}x{size}, seed {seed}",)
    return ProbeSet(images, tuple(ids), "photos", licence, notes)
