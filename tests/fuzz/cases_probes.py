"""Probe images, archives and server paths, fed through the app's upload and path fields."""

from __future__ import annotations

import functools
import os
import zipfile
from pathlib import Path

import numpy as np

from fuzz.build import FORMATS, flip_byte, image_bytes, noise, png_with_size, set_zip_flag, set_zip_method, zip_bytes
from fuzz.corpus import Case, Wrong

DESCRIPTIONS = {
    "probe-image": "damaged, empty, forged or odd images: named in an error (with what to do); odd but valid ones are converted with a note",
    "probe-set": "sets too small, of mixed sizes, with repeated names or degenerate probes: an error, or a warning naming the probes",
    "probe-archive": "zip-slip names, damaged, encrypted or bomb archives: an error naming the member; nothing is extracted to disk",
    "server-path": "paths typed on the page: refused unless the operator allowed folders; nothing outside them is listed or read",
}


def _upload(files: list[tuple[str, bytes]], size: int | None = 32):
    from depara_core.session.uploads import probes_from_upload

    return probes_from_upload(files, size)


def _good(n: int = 3, fmt: str = "png") -> list[tuple[str, bytes]]:
    return [(f"good{i}.{fmt}", image_bytes(fmt, seed=100 + i)) for i in range(n)]


def _with(name: str, data: bytes, size: int | None = 32):
    return lambda scratch: _upload(_good() + [(name, data)], size)


def _image_cases() -> list[Case]:
    out = []
    for ext, fmt in FORMATS.items():
        ok = image_bytes(ext, seed=1)
        c = "probe-image"
        out += [
            Case(c, f"{ext}-valid", _with(f"x.{ext}", ok), "ok"),
            Case(c, f"{ext}-empty", _with(f"x.{ext}", b""), match=r"x\." + ext),
            Case(c, f"{ext}-header-only", _with(f"x.{ext}", ok[:16]), match="x"),
            Case(c, f"{ext}-random-bytes", _with(f"x.{ext}", os.urandom(2000)), match="not a readable image"),
            Case(c, f"{ext}-text", _with(f"x.{ext}", b"hello, this is not an image\n" * 20), match="not a readable image"),
            Case(c, f"{ext}-named-wrongly", _with(f"x.{'png' if ext != 'png' else 'jpg'}", ok), "ok"),
        ]
        for frac in (0.25, 0.5, 0.75, 0.97):
            out.append(Case(c, f"{ext}-truncated-{int(frac * 100)}", _with(f"x.{ext}", ok[: int(len(ok) * frac)]), match="x"))
        if ext == "png":
            out.append(Case(c, "png-no-iend", _with("x.png", ok[:-12]), match="x.png"))
            out.append(Case(c, "png-bad-crc-end", _with("x.png", ok[:-1] + bytes([ok[-1] ^ 1])), match="x.png"))
            i = ok.find(b"IDAT")
            length = int.from_bytes(ok[i - 4 : i], "big")
            bad = bytearray(ok)
            bad[i + 4 + length] ^= 1
            out.append(Case(c, "png-bad-crc-idat", _with("x.png", bytes(bad)), match="x.png"))
            out.append(Case(c, "png-flipped-pixel-data", _with("x.png", flip_byte(ok, 0.6)), match="x.png"))
    c = "probe-image"
    f = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)

    def float_tiff(values: np.ndarray) -> bytes:
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(values.astype(np.float32), mode="F").save(buf, "TIFF")
        return buf.getvalue()

    for label, bad in (("nan", np.nan), ("inf", np.inf), ("minus-inf", -np.inf)):
        g = f.copy()
        g[3, 3] = bad
        out.append(Case(c, f"float-tiff-one-{label}", _with("f.tif", float_tiff(g)), match="f.tif"))
    all_nan = np.full((8, 8), np.nan, np.float32)
    out += [
        Case(c, "float-tiff-all-nan", _with("f.tif", float_tiff(all_nan)), match="f.tif"),
        Case(c, "float-tiff-valid", _with("f.tif", float_tiff(f)), "ok"),
        Case(c, "png-16-bit", _with("g.png", image_bytes("png", (np.arange(32 * 32).reshape(32, 32) * 60).astype(np.uint16))), "ok"),
        Case(c, "png-grey", _with("g.png", image_bytes("png", noise(3)[..., 0])), "ok"),
        Case(c, "png-rgba", _with("g.png", image_bytes("png", np.dstack([noise(4), noise(5)[..., :1]]))), "ok"),
        Case(c, "jpeg-cmyk", _with("g.jpg", _cmyk()), "ok"),
        Case(c, "gif-animated", _with("g.gif", _animated()), "ok"),
        Case(c, "png-1x1", _with("g.png", image_bytes("png", noise(6, 1, 1))), "ok"),
        Case(c, "png-1x4000", _with("g.png", image_bytes("png", noise(7, 1, 4000))), "ok"),
        Case(c, "jpeg-exif-rotated", _with("g.jpg", _exif_rotated()), "ok"),
        Case(c, "png-header-100000x100000", _with("bomb.png", png_with_size(100_000, 100_000)), match="megapixels"),
        Case(c, "png-header-65536x1", _with("w.png", png_with_size(65_536, 1)), match="w.png"),
        Case(c, "png-header-0x0", _with("z.png", png_with_size(0, 0)), match="z.png"),
        Case(c, "svg-text", _with("x.png", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"), match="x.png"),
        Case(c, "html-as-image", _with("x.jpg", b"<html><body>" + b"A" * 400 + b"</body></html>"), match="x.jpg"),
        Case(c, "zip-named-png", _with("x.png", zip_bytes({"a.png": image_bytes()})), match="x.png"),
    ]
    return out


def _cmyk() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(noise(8)).convert("CMYK").save(buf, "JPEG")
    return buf.getvalue()


def _animated() -> bytes:
    import io

    from PIL import Image

    frames = [Image.fromarray(noise(i, 16, 16)) for i in range(50)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _exif_rotated() -> bytes:
    import io

    from PIL import Image

    im = Image.fromarray(noise(9, 20, 30))
    exif = im.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def _set_cases() -> list[Case]:
    c = "probe-set"
    white = np.full((32, 32, 3), 255, np.uint8)
    grey = np.full((32, 32, 3), 128, np.uint8)
    clear = np.zeros((32, 32, 4), np.uint8)

    def check_both_kept(scratch):
        a, b = image_bytes(seed=1), image_bytes(seed=2)
        ps = _upload(_good(2) + [("same.png", a), ("same.png", b)])
        if len(ps) != 4:
            raise Wrong(f"two uploads named same.png became {len(ps)} - 2 probes")

    return [
        Case(c, "no-files", lambda s: _upload([])),
        Case(c, "one-image", lambda s: _upload(_good(1)), match="at least 3"),
        Case(c, "two-images", lambda s: _upload(_good(2)), match="at least 3"),
        Case(c, "three-images", lambda s: _upload(_good(3)), "ok"),
        Case(c, "mixed-sizes-no-size", lambda s: _upload(_good(2) + [("big.png", image_bytes(arr=noise(1, 40, 50)))], None), match="different sizes"),
        Case(c, "mixed-sizes-with-size", lambda s: _upload(_good(2) + [("big.png", image_bytes(arr=noise(1, 40, 50)))], 24), "ok"),
        Case(c, "no-extension", lambda s: _upload(_good() + [("README", b"text")]), match="README"),
        Case(c, "exe-extension", lambda s: _upload(_good() + [("x.exe", b"MZ" + b"\0" * 100)]), match="x.exe"),
        Case(c, "path-in-name", lambda s: _upload(_good() + [("../../etc/passwd.png", image_bytes(seed=4))]), "ok"),
        Case(c, "nul-in-name", lambda s: _upload(_good() + [("a\0b.png", image_bytes(seed=4))]), "ok"),
        Case(c, "long-name", lambda s: _upload(_good() + [("n" * 5000 + ".png", image_bytes(seed=4))]), "ok"),
        Case(c, "same-name-different-content", lambda s: check_both_kept(s), "warn", match="same.png"),
        Case(c, "same-name-same-content", lambda s: _upload(_good(3) + [("good0.png", image_bytes(seed=100))]), "warn", match="good0.png"),
        Case(c, "duplicate-probes", lambda s: _upload(_good(3) + [("copy.png", image_bytes(seed=100))]), "warn", match="identical"),
        Case(c, "all-white-probe", _with("white.png", image_bytes(arr=white)), "warn", match="white.png"),
        Case(c, "all-grey-probe", _with("grey.png", image_bytes(arr=grey)), "warn", match="grey.png"),
        Case(c, "transparent-probe", _with("clear.png", image_bytes(arr=clear)), "warn", match="clear.png"),
        Case(c, "all-constant", lambda s: _upload([(f"w{i}.png", image_bytes(arr=white)) for i in range(3)]), "warn", match="constant"),
        Case(c, "many-bad-files", lambda s: _upload(_good() + [(f"bad{i}.png", b"x") for i in range(20)]), match="17 more"),
        Case(c, "set-pixel-bomb", lambda s: _upload([(f"b{i}.png", _big_flat()) for i in range(20)], 32), match="megapixels"),
        Case(c, "size-zero-means-as-is", lambda s: _upload(_good(), 0), "ok"),
    ]


@functools.lru_cache(maxsize=1)
def _big_flat() -> bytes:
    # 6000 x 6000 of one colour: 36 megapixels in ~100 KB; 40 of them hold 1.4 G pixels - too many for one set
    return image_bytes(arr=np.broadcast_to(np.uint8(7), (6000, 6000, 3)).copy())


def _zip(members: dict[str, bytes], **kw):
    return lambda scratch: _upload([("probes.zip", zip_bytes(members, **kw))])


def _archive_cases() -> list[Case]:
    c = "probe-archive"
    good = {f"img{i}.png": image_bytes(seed=i) for i in range(3)}
    raw = zip_bytes(good)
    out = [
        Case(c, "valid", _zip(good), "ok"),
        Case(c, "valid-stored", _zip(good, method=zipfile.ZIP_STORED), "ok"),
        Case(c, "valid-bzip2", _zip(good, method=zipfile.ZIP_BZIP2), "ok"),
        Case(c, "valid-lzma", _zip(good, method=zipfile.ZIP_LZMA), "ok"),
        Case(c, "with-folders-and-mac-junk", _zip({**{f"d/{k}": v for k, v in good.items()}, "__MACOSX/d/._img0.png": b"junk", "d/.DS_Store": b"x"}), "ok"),
        Case(c, "empty-bytes", lambda s: _upload([("p.zip", b"")]), match="not a readable zip"),
        Case(c, "random-bytes", lambda s: _upload([("p.zip", os.urandom(3000))]), match="not a readable zip"),
        Case(c, "truncated-half", lambda s: _upload([("p.zip", raw[: len(raw) // 2])]), match="zip"),
        Case(c, "truncated-end", lambda s: _upload([("p.zip", raw[:-10])]), match="zip"),
        Case(c, "empty-archive", _zip({}), match="no image"),
        Case(c, "no-images", _zip({"a.txt": b"x", "b.csv": b"1,2"}), match="no image"),
        Case(c, "nested-zip", _zip({"inner.zip": raw}), match="no image"),
        Case(c, "encrypted", lambda s: _upload([("p.zip", set_zip_flag(raw, 1))]), match="encrypted"),
        Case(c, "unsupported-method", lambda s: _upload([("p.zip", set_zip_method(raw, 99))]), match="unsupported"),
        Case(c, "crc-error", lambda s: _upload([("p.zip", _crc_broken(raw))]), match="damaged"),
        Case(c, "damaged-member", lambda s: _upload([("p.zip", zip_bytes({"a.png": image_bytes(seed=1)[:100], **good}))]), match="a.png"),
        Case(c, "bomb-ratio", _zip({**good, "bomb.png": b"\0" * (20 * 2**20)}), match="bomb"),
        Case(c, "too-many-members", _zip({f"m{i}.png": b"" for i in range(5001)}, method=zipfile.ZIP_STORED), match="more than 5000"),
        Case(c, "duplicate-member-names", lambda s: _upload([("p.zip", _duplicate_members(good))]), match="img0.png"),
        Case(c, "symlink-member", lambda s: _upload([("p.zip", _symlink_zip(good))]), match="link.png"),
        Case(c, "two-archives", lambda s: _upload([("a.zip", raw), ("b.zip", raw)]), "warn", match="identical"),
        Case(c, "archive-plus-images", lambda s: _upload([("a.zip", raw)] + _good(3)), "ok"),
    ]
    for label, name in (
        ("dotdot", "../evil.png"), ("backslash-dotdot", "..\\evil.png"), ("absolute", "/tmp/evil.png"),
        ("drive", "C:\\evil.png"), ("nested-dotdot", "a/b/../../../evil.png"), ("backslash-nested", "a\\..\\..\\evil.png"),
        ("drive-forward", "C:/evil.png"), ("unc", "\\\\server\\share\\evil.png"),
    ):  # fmt: skip
        out.append(Case(c, f"zip-slip-{label}", _zip({**good, name: image_bytes(seed=9)}), match="outside the archive"))
    return out


def _crc_broken(raw: bytes) -> bytes:
    b = bytearray(raw)
    i = b.find(b"PK\x03\x04")
    b[i + 14] ^= 0xFF  # the member's CRC-32 in its local header
    j = b.find(b"PK\x01\x02")
    b[j + 16] ^= 0xFF  # and in the central directory
    return bytes(b)


def _duplicate_members(good: dict[str, bytes]) -> bytes:
    import io
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as zf:
        warnings.simplefilter("ignore")
        for k, v in good.items():
            zf.writestr(k, v)
        zf.writestr("img0.png", image_bytes(seed=50))
    return buf.getvalue()


def _symlink_zip(good: dict[str, bytes]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in good.items():
            zf.writestr(k, v)
        info = zipfile.ZipInfo("link.png")
        info.external_attr = (0o120777 << 16)  # a symbolic link to /etc/passwd
        zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _path_cases() -> list[Case]:
    from depara_core.session.policy import ServerPolicy

    c = "server-path"

    def layout(scratch: Path) -> tuple[Path, Path]:
        root, outside = scratch / "allowed", scratch / "private"
        (root / "probes").mkdir(parents=True, exist_ok=True)
        outside.mkdir(exist_ok=True)
        for i in range(3):
            (root / "probes" / f"p{i}.png").write_bytes(image_bytes(seed=i))
            (outside / f"secret{i}.png").write_bytes(image_bytes(seed=10 + i))
        return root, outside

    def load(path_of, roots: bool = True):
        def run(scratch: Path):
            from depara_core.session.uploads import probes_from_path

            root, outside = layout(scratch)
            policy = ServerPolicy(False, (root.resolve(),) if roots else ())
            ps = probes_from_path(path_of(root, outside), 32, policy)
            if any("secret" in i for i in ps.ids):
                raise Wrong(f"read files outside the allowed folder: {[i for i in ps.ids if 'secret' in i]}")
            return ps

        return run

    def link(name: str, target_of):
        def path_of(root: Path, outside: Path) -> str:
            p = root / "probes" / name
            if not p.is_symlink():
                p.symlink_to(target_of(root, outside))
            return str(root / "probes")

        return path_of

    def same_answer(scratch: Path):
        from depara_core.errors import DeparaError
        from depara_core.session.uploads import probes_from_path

        root, outside = layout(scratch)
        policy = ServerPolicy(False, (root.resolve(),))
        msgs = []
        for p in (outside, scratch / "absent"):
            try:
                probes_from_path(str(p), 32, policy)
            except DeparaError as exc:
                msgs.append(str(exc).replace(p.name, "NAME"))
        if len(msgs) != 2 or msgs[0] != msgs[1]:
            raise Wrong(f"an existing and a missing outside path are answered differently: {msgs}")
        raise DeparaError("both refused alike", "nothing to do")

    out = [
        Case(c, "inside-root", load(lambda r, o: str(r / "probes")), "ok"),
        Case(c, "the-root-itself", load(lambda r, o: str(r)), "ok"),
        Case(c, "no-roots-configured", load(lambda r, o: str(r / "probes"), roots=False), match="does not read"),
        Case(c, "outside-root", load(lambda r, o: str(o)), match="not a folder under"),
        Case(c, "etc", load(lambda r, o: "/etc"), match="not a folder under"),
        Case(c, "home", load(lambda r, o: "~"), match="not a folder under"),
        Case(c, "filesystem-root", load(lambda r, o: "/"), match="not a folder under"),
        Case(c, "dotdot-escape", load(lambda r, o: str(r / "probes" / ".." / ".." / "private")), match="not a folder under"),
        Case(c, "relative-escape", load(lambda r, o: "../../../../../etc"), match="not a folder under"),
        Case(c, "missing-inside", load(lambda r, o: str(r / "nope")), match="not a folder under"),
        Case(c, "empty", load(lambda r, o: ""), match="no folder path"),
        Case(c, "blank", load(lambda r, o: "   "), match="no folder path"),
        Case(c, "nul-byte", load(lambda r, o: str(r) + "\0/etc"), match="not a folder under"),
        Case(c, "very-long", load(lambda r, o: "/" + "a" * 10000), match="not a folder under"),
        Case(c, "file-as-folder", load(lambda r, o: str(r / "probes" / "p0.png")), match="not a folder"),
        Case(c, "folder-link-escape", load(lambda r, o: str(_mklink(r / "probes" / "lnk", o))), match="not a folder under"),
        Case(c, "file-links-inside-escape", load(link("l.png", lambda r, o: o / "secret0.png")), "ok"),
        Case(c, "folder-links-inside-escape", load(link("sub", lambda r, o: o)), "ok"),
        Case(c, "zip-outside", load(lambda r, o: str(_zip_at(o / "x.zip"))), match="not a file under"),
        Case(c, "zip-inside", load(lambda r, o: str(_zip_at(r / "x.zip"))), "ok"),
        Case(c, "zip-link-escape", load(lambda r, o: str(_mklink(r / "y.zip", _zip_at(o / "x.zip")))), match="not a file under"),
        Case(c, "exists-and-missing-answered-alike", same_answer),
    ]
    return out


def _mklink(link: Path, target: Path) -> Path:
    if not link.is_symlink():
        link.symlink_to(target)
    return link


def _zip_at(path: Path) -> Path:
    path.write_bytes(zip_bytes({f"z{i}.png": image_bytes(seed=20 + i) for i in range(3)}))
    return path


def cases() -> list[Case]:
    return _image_cases() + _set_cases() + _archive_cases() + _path_cases()
