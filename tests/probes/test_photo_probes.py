"""The "photos" probe set: deterministic, varied, correctly sized and attributed."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import numpy as np
import pytest

from depara_core.errors import ProbeError
from depara_core.probes.photos import ATTRIBUTIONS, SOURCES, available_photos, natural_photos
from depara_core.probes.registry import builtin_probe_sets, load_builtin


def test_photos_are_found_and_attributed():
    found = available_photos()
    assert len(found) == len(SOURCES) == 14  # scikit-image, scikit-learn and matplotlib are dependencies
    assert set(ATTRIBUTIONS) == set(SOURCES)
    assert all(path.is_file() for path in found.values())


def test_same_arguments_same_digest_and_seed_changes_it():
    a, b = natural_photos(count=30, size=96), natural_photos(count=30, size=96)
    assert a.digest == b.digest and np.array_equal(a.images, b.images)
    c = natural_photos(count=30, size=96, seed=1)
    assert c.digest != a.digest
    assert np.array_equal(c.images[:14], a.images[:14])  # the centre squares do not depend on the seed
    assert not np.array_equal(c.images[14:], a.images[14:])


def test_count_size_and_ids():
    p = natural_photos(count=40, size=64)
    assert len(p) == 40 and p.images.shape == (40, 64, 64, 3) and p.images.dtype == np.uint8
    assert all(re.fullmatch(r"photos-\d{4}-[a-z_]+", i) for i in p.ids)
    assert [i.split("-", 2)[2] for i in p.ids[:14]] == list(available_photos())
    assert p.ids[7] == "photos-0007-hubble_deep_field" and p.name == "photos"


def test_content_is_varied():
    p = natural_photos(count=60, size=64)
    hashes = {hashlib.sha256(img.tobytes()).hexdigest() for img in p.images}
    assert len(hashes) == 60
    means = p.images.reshape(60, -1).mean(axis=1)
    assert means.std() > 15  # dark space, bright cups, grey textures
    assert p.images.reshape(60, -1).std(axis=1).min() > 5  # no flat crops
    colour = np.abs(p.images[..., 0].astype(int) - p.images[..., 2]).mean(axis=(1, 2))
    assert (colour > 10).sum() >= 20 and (colour < 1).sum() >= 10  # colour photos and greyscale ones


def test_licence_mentions_every_photo_used():
    p = natural_photos(count=20, size=32)
    assert "CC-BY 2.0" in p.licence and "CC0" in p.licence and "public domain" in p.licence
    for key in {i.split("-", 2)[2] for i in p.ids}:
        assert ATTRIBUTIONS[key] in p.licence
    few = natural_photos(count=4, size=32)
    assert "CC-BY" not in few.licence  # only chelsea, coffee, astronaut, rocket


def test_registered_as_builtin():
    assert "photos" in builtin_probe_sets()
    p = load_builtin("photos")
    assert len(p) == 200 and p.size == (224, 224)
    assert load_builtin("photos", 5).digest == natural_photos(count=5).digest


def test_too_few_probes_refused():
    with pytest.raises(ProbeError):
        natural_photos(count=2)


def test_import_decodes_nothing():
    code = (
        "import sys, depara_core.probes.photos as pp; "
        "print(pp._decoded.cache_info().currsize, 'skimage' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["0", "False", "False"]
