"""Probe loading: folders, zips, bytes; conversions; and every bad input the engine refuses."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from depara_core.errors import ProbeError
from depara_core.models.preprocess import IMAGENET, Preprocess
from depara_core.probes.probeset import ProbeSet, ZipLimits
from depara_core.probes.registry import load_builtin


def png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def write_images(folder, n=4, size=(10, 12), seed=0):
    rng = np.random.default_rng(seed)
    arrays = []
    for i in range(n):
        a = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(a).save(folder / f"img{i}.png")
        arrays.append(a)
    return arrays


def test_folder_is_loaded_in_sorted_order_with_stable_digest(tmp_path):
    arrays = write_images(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image, ignored by extension")
    p = ProbeSet.from_folder(tmp_path)
    assert p.ids == ("img0.png", "img1.png", "img2.png", "img3.png")
    np.testing.assert_array_equal(p.images, np.stack(arrays))
    assert p.digest == ProbeSet.from_folder(tmp_path).digest
    changed = np.array(p.images)
    changed[0, 0, 0, 0] ^= 1
    assert ProbeSet(changed, p.ids).digest != p.digest
    assert not p.images.flags.writeable


def test_fewer_than_three_probes(tmp_path):
    write_images(tmp_path, n=2)
    with pytest.raises(ProbeError, match="only 2 probe image.*at least 3"):
        ProbeSet.from_folder(tmp_path)


def test_corrupt_and_non_image_files_are_named(tmp_path):
    write_images(tmp_path, n=3)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(ProbeError, match="'broken.jpg' is not a readable image.*remove or replace"):
        ProbeSet.from_folder(tmp_path)
    with pytest.raises(ProbeError, match="'c.png' is empty.*'readme.png' is not a readable image.*those files"):
        ProbeSet.from_bytes({"a.png": png(np.zeros((4, 4, 3), np.uint8)), "readme.png": b"hello", "c.png": b""})


def test_mixed_sizes_need_a_common_size(tmp_path):
    write_images(tmp_path, n=2, size=(10, 12))
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(ProbeError, match=r"2 different sizes.*pass a common size"):
        ProbeSet.from_folder(tmp_path)
    p = ProbeSet.from_folder(tmp_path, size=(8, 8))
    assert p.size == (8, 8) and len(p) == 3


def test_modes_are_converted_to_rgb():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0  # fully transparent -> white
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(deep).save(buf, format="PNG")
    pal = Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).convert("P")
    pbuf = io.BytesIO()
    pal.save(pbuf, format="PNG")
    p = ProbeSet.from_bytes({"a_grey.png": png(grey), "b_rgba.png": png(rgba), "c_16bit.png": buf.getvalue(), "d_pal.png": pbuf.getvalue()})
    np.testing.assert_array_equal(p.images[0, ..., 0], grey)
    np.testing.assert_array_equal(p.images[0, ..., 1], grey)
    assert (p.images[1] == 255).all()
    np.testing.assert_array_equal(p.images[2, ..., 0], np.round(deep / 65535 * 255).astype(np.uint8))
    np.testing.assert_array_equal(p.images[3], np.asarray(pal.convert("RGB")))
    assert any("16" in note for note in p.notes) and any("transparency" in note for note in p.notes)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_is_read_in_memory():
    imgs = {f"dir/p{i}.png": png(np.full((6, 6, 3), i * 40, np.uint8)) for i in range(4)}
    p = ProbeSet.from_zip(zip_bytes({**imgs, "__MACOSX/._junk.png": b"x", "readme.txt": b"hi"}))
    assert p.ids == tuple(sorted(imgs)) and len(p) == 4


def test_zip_path_traversal_is_refused():
    imgs = {f"p{i}.png": png(np.zeros((4, 4, 3), np.uint8)) for i in range(3)}
    with pytest.raises(ProbeError, match="points outside the archive"):
        ProbeSet.from_zip(zip_bytes({**imgs, "../../etc/evil.png": imgs["p0.png"]}))


def test_zip_bomb_is_refused():
    bomb = {f"p{i}.png": b"\0" * 5_000_000 for i in range(3)}
    with pytest.raises(ProbeError, match="decompression bomb"):
        ProbeSet.from_zip(zip_bytes(bomb), limits=ZipLimits(max_ratio=100))
    with pytest.raises(ProbeError, match="not a readable zip"):
        ProbeSet.from_zip(b"not a zip")


def test_float_arrays_and_bad_ranges():
    x = np.random.default_rng(0).random((3, 3, 5, 5))
    p = ProbeSet.from_arrays(x)
    assert p.images.shape == (3, 5, 5, 3)
    with pytest.raises(ProbeError, match=r"lie in \[0, 1\]"):
        ProbeSet.from_arrays(x * 3)


def test_preprocess_matches_manual_normalisation():
    imgs = np.random.default_rng(1).integers(0, 256, (2, 300, 260, 3), dtype=np.uint8)
    x = IMAGENET(imgs)
    assert tuple(x.shape) == (2, 3, 224, 224)
    flat = Preprocess(mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.1), value_range=(-1, 1))(imgs[:, :8, :8])
    ref = (imgs[:, :8, :8].astype(np.float64) / 255 * 2 - 1 - np.array([0.5, 0.4, 0.3])) / np.array([0.2, 0.2, 0.1])
    np.testing.assert_allclose(flat.permute(0, 2, 3, 1).numpy(), ref, atol=1e-5)
    assert flat.dtype == torch.float32


def test_builtin_noise_is_deterministic():
    a, b = load_builtin("noise", 5), load_builtin("noise", 5)
    assert a.digest == b.digest and a.images.std() > 10
    with pytest.raises(ProbeError, match="no built-in probe set 'nope'.*noise"):
        load_builtin("nope")


def test_from_path_dispatches_on_zip_or_folder(tmp_path):
    imgs = {f"p{i}.png": png(np.full((6, 6, 3), i * 40, np.uint8)) for i in range(3)}
    (tmp_path / "set.zip").write_bytes(zip_bytes(imgs))
    folder = tmp_path / "folder"
    folder.mkdir()
    for name, data in imgs.items():
        (folder / name).write_bytes(data)
    z, f = ProbeSet.from_path(tmp_path / "set.zip"), ProbeSet.from_path(folder)
    assert z.name == "set" and z.ids == f.ids and z.digest == f.digest


def test_pixel_bombs_are_refused_from_the_header():
    """A small file that declares a huge image is refused before it is decoded."""
    import io as _io
    import struct
    import zlib

    from PIL import Image as _Image

    def png(w, h, declared=None):
        buf = _io.BytesIO()
        _Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(buf, format="PNG")
        data = bytearray(buf.getvalue())
        if declared is not None:  # patch the header's size and its CRC
            data[16:24] = struct.pack(">II", *declared)
            data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
        return bytes(data)

    items = {"bomb.png": png(4, 4, declared=(10000, 10000)), "a.png": png(8, 8), "b.png": png(8, 8)}
    with pytest.raises(ProbeError, match="10000x10000 pixels, more than the 64 megapixels"):
        ProbeSet.from_bytes(items, size=(8, 8))


def test_large_jpegs_are_decoded_at_reduced_scale_with_the_same_result_size():
    import io as _io

    from PIL import Image as _Image

    rng = np.random.default_rng(0)
    items = {}
    for i in range(3):
        buf = _io.BytesIO()
        _Image.fromarray(rng.integers(0, 256, (1200, 1600, 3), dtype=np.uint8)).save(buf, format="JPEG")
        items[f"{i}.jpg"] = buf.getvalue()
    probes = ProbeSet.from_bytes(items, size=(64, 64))
    assert probes.images.shape == (3, 64, 64, 3)


def test_damaged_zip_members_are_named_not_raised_raw():
    import io as _io
    import zipfile as _zip

    from PIL import Image as _Image

    buf = _io.BytesIO()
    with _zip.ZipFile(buf, "w", compression=_zip.ZIP_STORED) as z:
        for i in range(3):
            png = _io.BytesIO()
            _Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(png, format="PNG")
            z.writestr(f"p{i}.png", png.getvalue())
    data = bytearray(buf.getvalue())
    at = data.find(b"IDAT") + 8  # inside the first member's stored bytes
    data[at] ^= 0xFF
    with pytest.raises(ProbeError, match="archive member 'p0.png' cannot be read: it is damaged"):
        ProbeSet.from_zip(bytes(data))


def test_duplicate_and_constant_probes_are_reported():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    imgs[3] = imgs[1]
    imgs[2] = 128
    with pytest.warns(UserWarning, match="identical probes"):
        probes = ProbeSet.from_arrays(imgs, name="dupes")
    assert any(n.startswith("identical probes (1)") and "dupes-0003 = dupes-0001" in n for n in probes.notes)
    assert any(n.startswith("constant probes (1") and "dupes-0002" in n for n in probes.notes)
