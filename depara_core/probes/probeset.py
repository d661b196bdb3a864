"""Probe sets: the shared, unlabelled images every DEPARA graph is built on.

>>> import numpy as np
>>> imgs = np.zeros((3, 8, 8, 3), np.uint8); imgs[1] += 80; imgs[2] += 160
>>> probes = ProbeSet.from_arrays(imgs, name="toy")
>>> len(probes), probes.size, probes.digest == ProbeSet.from_arrays(imgs, name="toy").digest
(3, (8, 8), True)
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from depara_core.errors import ProbeError

__all__ = [
    "ProbeSet",
    "MIN_PROBES",
    "ProbeWarning",
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_PIXELS",
    "MAX_SET_PIXELS",
    "ZipLimits",
    "decode_image",
    "check_set_size",
]

MIN_PROBES = 3
MAX_IMAGE_PIXELS = 64_000_000
"""The largest probe image decoded (pixels, read from the header first)."""
MAX_SET_PIXELS = 600_000_000
"""The most pixels decoded for one probe set, counted from the headers before decoding (1,000 images
of 0.6 megapixels; JPEGs count at the reduced size they are decoded at)."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def check_set_size(count: int, size: Sequence[int]) -> None:
    """Refuse a probe set of ``count`` images of ``size`` (H, W) holding more than :data:`MAX_SET_PIXELS`."""
    h, w = (int(v) for v in size)
    if h < 1 or w < 1:
        raise ProbeError(f"a probe size of {h}x{w} pixels holds no image", "use a size of at least 8x8")
    if count * h * w > MAX_SET_PIXELS:
        raise ProbeError(
            f"{count} probes of {h}x{w} pixels would hold {count * h * w / 1e6:,.0f} megapixels, more than the {MAX_SET_PIXELS / 1e6:,.0f} allowed",
            "use fewer probes or a smaller probe size (224x224 suits most models)",
        )


@dataclass(frozen=True)
class ZipLimits:
    """Guards for zip archives from untrusted sources (decompression bombs)."""

    max_members: int = 5000
    max_member_bytes: int = 64 * 2**20
    max_total_bytes: int = 1024 * 2**20
    max_ratio: float = 200.0


@dataclass(frozen=True)
class ProbeSet:
    """A fixed, ordered set of RGB probe images with stable ids and a content digest.

    ``images`` is a read-only uint8 array (N, H, W, 3). ``ids`` name the images (file names for
    loaded sets). ``digest`` hashes ids and pixels, so that cached graphs are keyed by content.
    """

    images: np.ndarray
    ids: tuple[str, ...]
    name: str = "probes"
    licence: str = ""
    notes: tuple[str, ...] = ()
    digest: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        imgs = self.images
        if imgs.ndim != 4 or imgs.shape[-1] != 3 or imgs.dtype != np.uint8:
            raise ProbeError(
                f"probe images must be a uint8 array (N, H, W, 3), got {imgs.dtype} {imgs.shape}",
                "convert the images to 8-bit RGB",
            )
        if len(self.ids) != imgs.shape[0]:
            raise ProbeError(f"{len(self.ids)} ids for {imgs.shape[0]} images", "give one id per image")
        if len(set(self.ids)) != len(self.ids):
            raise ProbeError("probe ids are not unique", "give each image its own name")
        if imgs.shape[0] < MIN_PROBES:
            raise ProbeError(
                f"only {imgs.shape[0]} probe image(s) were given; DEPARA needs at least {MIN_PROBES}"
                " (edges compare pairs of probes, and their Spearman correlation needs 3 pairs)",
                "add more images (about 200 are enough for stable rankings)",
            )
        check_set_size(imgs.shape[0], imgs.shape[1:3])
        imgs = np.ascontiguousarray(imgs)
        imgs.setflags(write=False)
        object.__setattr__(self, "images", imgs)
        if not self.digest:
            h = hashlib.sha256()
            h.update(repr((imgs.shape, self.ids)).encode())
            h.update(imgs.tobytes())
            object.__setattr__(self, "digest", h.hexdigest())

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of every image."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def resized(self, size: tuple[int, int]) -> ProbeSet:
        """Every probe resized (shorter side first) and centre-cropped to ``size`` = (H, W)."""
        if tuple(size) == self.size:
            return self
        check_set_size(len(self), size)
        arrays = [_resize_crop_uint8(a, tuple(size)) for a in self.images]
        return ProbeSet(np.stack(arrays), self.ids, self.name, self.licence, self.notes)

    def subset(self, count: int | None = None, indices: Iterable[int] | None = None) -> ProbeSet:
        """The first ``count`` probes, or those at ``indices``, as a new probe set."""
        idx = list(range(min(count, len(self)))) if indices is None else list(indices)
        if count is None and indices is None:
            return self
        return ProbeSet(self.images[idx], tuple(self.ids[i] for i in idx), self.name, self.licence, self.notes)

    # ---- constructors -------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls, images: np.ndarray, ids: Iterable[str] | None = None, name: str = "probes", licence: str = ""
    ) -> ProbeSet:
        """From a uint8 (N, H, W, 3) array, or float (N, 3, H, W)/(N, H, W, 3) in [0, 1]."""
        arr = np.asarray(images)
        if arr.ndim == 4 and arr.shape[1] == 3 and arr.shape[-1] != 3:
            arr = arr.transpose(0, 2, 3, 1)
        if arr.dtype != np.uint8:
            if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
                raise ProbeError("float probe images must lie in [0, 1]", "rescale them or pass uint8 images")
            arr = np.round(arr * 255).astype(np.uint8)
        ids = tuple(ids) if ids is not None else tuple(f"{name}-{i:04d}" for i in range(arr.shape[0]))
        return cls(arr, ids, name, licence, notes=tuple(_report_degenerate(list(arr), ids)))

    @classmethod
    def from_bytes(
        cls, items: Mapping[str, bytes], size: tuple[int, int] | None = None, name: str = "uploaded"
    ) -> ProbeSet:
        """From a mapping of file name to encoded image bytes (uploads, zip members)."""
        if size is not None:
            check_set_size(len(items), size)
        decoded: dict[str, np.ndarray] = {}
        notes: list[str] = []
        bad: list[str] = []
        total = sum(_pixels_to_decode(items[key], size) for key in items)  # from the headers, before any decoding
        if total > MAX_SET_PIXELS:
            raise ProbeError(
                f"decoding these probe images would take {total / 1e6:,.0f} megapixels, more than the {MAX_SET_PIXELS / 1e6:,.0f} allowed for one set",
                "use fewer or smaller images (JPEGs are decoded at reduced size), or a smaller probe size",
            )
        for key in sorted(items):
            try:
                arr, note = decode_image(items[key], key, size)
            except ProbeError as exc:
                bad.append(exc.problem)
                continue
            decoded[key] = _resize_crop_uint8(arr, size) if size is not None else arr  # one full-size image held at a time
            if note:
                notes.append(f"{key}: {note}")
        if bad:
            more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
            raise ProbeError("; ".join(bad[:3]) + more, f"remove or replace {'that file' if len(bad) == 1 else 'those files'}")
        return cls._assemble(decoded, size, name, notes)

    @classmethod
    def from_folder(
        cls, folder: str | os.PathLike, size: tuple[int, int] | None = None, limit: int | None = None, confine: bool = False
    ) -> ProbeSet:
        """Every image file in ``folder`` (recursively, sorted by relative path).

        ``confine=True`` reads only files that resolve (symbolic links followed) inside ``folder``,
        and never descends into linked folders: what a web page may ask a server to read.
        """
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise ProbeError(f"probe folder {root.name!r} does not exist or is not a folder", "give an existing folder of images")
        files = sorted(p for p in _walk(root, follow_links=not confine) if p.suffix.lower() in IMAGE_SUFFIXES)
        if confine:
            inside = root.resolve()
            files = [p for p in files if p.resolve() == inside or inside in p.resolve().parents]
        if not files:
            raise ProbeError(
                f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {str(root)!r}", "put the probe images in that folder"
            )
        if limit is not None:
            files = files[:limit]
        items = {str(p.relative_to(root)): p.read_bytes() for p in files}
        return cls.from_bytes(items, size, root.name or "folder")

    @classmethod
    def from_path(cls, path: str | os.PathLike, size: tuple[int, int] | None = None, confine: bool = False) -> ProbeSet:
        """A ``.zip`` file or a folder of images, by what ``path`` is (``confine``: see :meth:`from_folder`)."""
        path = Path(path).expanduser()
        if path.suffix.lower() == ".zip":
            return cls.from_zip(path, size=size, name=path.stem)
        return cls.from_folder(path, size=size, confine=confine)

    @classmethod
    def from_zip(
        cls,
        source: str | os.PathLike | bytes,
        size: tuple[int, int] | None = None,
        limits: ZipLimits = ZipLimits(),
        name: str = "zip",
    ) -> ProbeSet:
        """Image members of a zip archive, read in memory (nothing is extracted to disk)."""
        try:
            zf = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ProbeError(f"the probe archive is not a readable zip file ({exc})", "upload a .zip of images") from None
        with zf:
            members = [m for m in zf.infolist() if not m.is_dir() and m.filename.lower().endswith(IMAGE_SUFFIXES)]
            if len(members) > limits.max_members:
                raise ProbeError(f"the archive holds {len(members)} images, more than {limits.max_members}", "use fewer probes")
            safe_names = {id(m): _safe_member_name(m.filename) for m in members}  # every name is checked, hidden ones too
            members = [m for m in members if not safe_names[id(m)].rsplit("/", 1)[-1].startswith(("._", "."))]
            repeated = sorted(k for k, v in Counter(safe_names[id(m)] for m in members).items() if v > 1)
            if repeated:
                raise ProbeError(f"the archive holds several members named {', '.join(map(repr, repeated[:3]))}", "give every image in the archive its own name")
            total = 0
            items: dict[str, bytes] = {}
            for m in members:
                safe = safe_names[id(m)]
                ratio = m.file_size / max(m.compress_size, 1)
                if m.file_size > limits.max_member_bytes or ratio > limits.max_ratio:
                    raise ProbeError(
                        f"archive member {safe!r} unpacks to {m.file_size} bytes (ratio {ratio:.0f}:1);"
                        " it looks like a decompression bomb",
                        "upload ordinary image files",
                    )
                total += m.file_size
                if total > limits.max_total_bytes:
                    raise ProbeError(
                        f"the archive unpacks to more than {limits.max_total_bytes // 2**20} MiB", "upload fewer or smaller images"
                    )
                try:
                    with zf.open(m) as fh:
                        data = fh.read(limits.max_member_bytes + 1)
                except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, OSError, zlib.error) as exc:
                    why = "encrypted" if m.flag_bits & 0x1 else ("compressed with an unsupported method" if isinstance(exc, NotImplementedError) else "damaged")
                    raise ProbeError(f"archive member {safe!r} cannot be read: it is {why}", "upload an ordinary (unencrypted, deflate or stored) zip of images") from None
                if len(data) > limits.max_member_bytes:
                    raise ProbeError(f"archive member {safe!r} is larger than declared", "upload a well-formed zip")
                items[safe] = data
        if not items:
            raise ProbeError("the archive holds no image files", f"add images ({', '.join(IMAGE_SUFFIXES)})")
        return cls.from_bytes(items, size, name)

    @classmethod
    def concat(cls, sets: Sequence[ProbeSet], name: str = "probes") -> ProbeSet:
        """Several probe sets of one size as one, ids prefixed by their set's name (``set/id``)."""
        if len({s.size for s in sets}) > 1:
            raise ProbeError("the probe sets hold images of different sizes", "choose a common probe size")
        arrays = [a for s in sets for a in s.images]
        ids = tuple(f"{s.name}/{i}" for s in sets for i in s.ids)
        if len(set(ids)) != len(ids):
            ids = tuple(f"{k}:{s.name}/{i}" for k, s in enumerate(sets) for i in s.ids)
        notes = [n for s in sets for n in s.notes if not n.startswith(_DEGENERATE)] + _report_degenerate(arrays, ids)
        return cls(np.stack(arrays), ids, name, notes=tuple(notes))

    @classmethod
    def _assemble(cls, decoded: dict[str, np.ndarray], size: tuple[int, int] | None, name: str, notes: list[str]) -> ProbeSet:
        if len(decoded) < MIN_PROBES:
            raise ProbeError(
                f"only {len(decoded)} probe image(s) were given; DEPARA needs at least {MIN_PROBES}",
                "add more images (about 200 are enough for stable rankings)",
            )
        if size is None:
            sizes = {a.shape[:2] for a in decoded.values()}
            if len(sizes) > 1:
                listed = ", ".join(f"{h}x{w}" for h, w in sorted(sizes)[:6])
                raise ProbeError(
                    f"the probe images have {len(sizes)} different sizes ({listed}, as height x width)",
                    "pass a common size (size=(H, W), or --size H W on the command line) to resize and centre-crop them",
                )
            arrays = list(decoded.values())
        else:
            arrays = [_resize_crop_uint8(a, size) for a in decoded.values()]
        ids = tuple(decoded)
        return cls(np.stack(arrays), ids, name, notes=tuple(notes + _report_degenerate(arrays, ids)))


_DEGENERATE = ("identical probes", "constant probes")
"""How the notes on degenerate probes begin."""


class ProbeWarning(UserWarning):
    """Probes whose edges are degenerate (duplicates, constant images): allowed, but reported."""


def _degenerate_probe_notes(arrays: list[np.ndarray], ids: tuple[str, ...]) -> list[str]:
    """Notes naming duplicate probes (cosine 1 to each other at every layer) and constant ones (one
    colour: their attribution maps and features carry no spatial content)."""
    notes = []
    seen: dict[bytes, str] = {}
    dupes = []
    for key, arr in zip(ids, arrays):
        h = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).digest()
        if h in seen:
            dupes.append(f"{key} = {seen[h]}")
        else:
            seen[h] = key
    if dupes:
        notes.append(f"{_DEGENERATE[0]} ({len(dupes)}): {', '.join(dupes[:5])}; each pair's edge is 1 at every layer")
    flat = [key for key, arr in zip(ids, arrays) if int(arr.max()) == int(arr.min())]
    if flat:
        notes.append(f"{_DEGENERATE[1]} ({len(flat)}, a single colour): {', '.join(flat[:5])}")
    return notes


def _report_degenerate(arrays: list[np.ndarray], ids: tuple[str, ...]) -> list[str]:
    """The degenerate-probe notes, each also issued as a :class:`ProbeWarning`."""
    notes = _degenerate_probe_notes(arrays, ids)
    for note in notes:
        warnings.warn(note, ProbeWarning, stacklevel=4)
    return notes


def _draft_factor(w: int, h: int, target: tuple[int, int] | None) -> int:
    """How much a JPEG's decoder may shrink it (1, 2, 4 or 8) and still cover ``target`` after resizing."""
    if target is None:
        return 1
    room = min(w / max(target[1], 1), h / max(target[0], 1))
    return next((r for r in (8, 4, 2) if r <= room), 1)


def _pixels_to_decode(data: bytes, target: tuple[int, int] | None) -> int:
    """Pixels that decoding ``data`` will produce, from its header alone (0 when unreadable: the decoder reports it)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            r = _draft_factor(w, h, target) if im.format == "JPEG" else 1
    except Exception:  # noqa: BLE001 - any unreadable header is reported by decode_image, with the file's name
        return 0
    return -(-w // r) * -(-h // r)


def _png_intact(data: bytes, label: str) -> None:
    """Check every chunk's CRC-32 and that the file ends with IEND. Written by hand because PIL skips
    the CRCs of the chunks it does not need (IEND's included) and decodes files that lack the end."""
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        body = data[pos + 4 : pos + 8 + length]
        crc = data[pos + 8 + length : pos + 12 + length]
        if len(crc) < 4 or zlib.crc32(body) != int.from_bytes(crc, "big"):
            raise ProbeError(f"{label!r} is damaged: its {body[:4].decode('latin-1')!r} chunk fails its checksum", "remove or replace that file")
        if body[:4] == b"IEND":
            return
        pos += 12 + length
    raise ProbeError(f"{label!r} is truncated: the PNG ends before its end marker", "remove or replace that file")


def decode_image(data: bytes, label: str = "image", target: tuple[int, int] | None = None) -> tuple[np.ndarray, str]:
    """Decode encoded image bytes to uint8 RGB (H, W, 3); returns the array and a note on conversion.

    Greyscale, palette, CMYK and 16-bit images are converted; transparency is composited on white.
    Images over :data:`MAX_IMAGE_PIXELS` are refused from their header, before decoding; with a
    ``target`` size (the resize-and-crop that follows), JPEGs are decoded at a reduced scale that
    still covers it (PIL's ``draft``).
    """
    if not data:
        raise ProbeError(f"{label!r} is empty (0 bytes)", "remove or replace that file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h == 0:
                raise ProbeError(f"{label!r} has no pixels ({w}x{h})", "remove or replace that file")
            if w * h > MAX_IMAGE_PIXELS:
                raise ProbeError(f"{label!r} has {w}x{h} pixels, more than the {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels a probe may have", "use smaller images")
            if target is not None and im.format == "JPEG":
                scale = max(target[0] / h, target[1] / w)
                im.draft("RGB", (max(1, int(np.ceil(w * scale))), max(1, int(np.ceil(h * scale)))))
            if im.format == "PNG":
                _png_intact(data, label)
            im.load()
            im = ImageOps.exif_transpose(im)
            mode = im.mode
            note = ""
            if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                arr = np.asarray(im, dtype=np.float64)
                if not np.isfinite(arr).all():
                    bad = int((~np.isfinite(arr)).sum())
                    raise ProbeError(f"{label!r} holds {bad} pixel(s) that are NaN or infinite", "replace them (e.g. with the image's mean) before using it as a probe")
                lo, hi = (0.0, 65535.0) if mode.startswith("I;16") else (float(arr.min()), float(arr.max()))
                arr = np.clip((arr - lo) / max(hi - lo, 1e-12), 0, 1)
                rgb = np.repeat(np.round(arr * 255).astype(np.uint8)[..., None], 3, axis=2)
                return rgb, f"{mode} image scaled to 8 bits and repeated to RGB"
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                note = "palette image converted to RGB"
            if im.mode in ("RGBA", "LA", "PA"):
                im = im.convert("RGBA")
                background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(background, im)
                note = "transparency composited on white"
            elif im.mode != "RGB":
                note = note or f"{im.mode} image converted to RGB"
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
            return rgb, note
    except ProbeError:
        raise
    except Image.DecompressionBombError:
        raise ProbeError(f"{label!r} has more than the {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels a probe may have", "use smaller images") from None
    except UnidentifiedImageError:
        raise ProbeError(f"{label!r} is not a readable image: its content is none of PNG, JPEG, BMP, GIF, TIFF, WebP or PPM", "remove or replace that file") from None
    except (OSError, SyntaxError, ValueError) as exc:
        detail = re.sub(r"<[^>]*>", "", str(exc)).strip()[:160]  # the decoder's own words, without object addresses
        raise ProbeError(f"{label!r} is not a readable image: it is truncated or damaged ({detail})", "remove or replace that file") from None


def _resize_crop_uint8(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    th, tw = size
    h, w = arr.shape[:2]
    if (h, w) == (th, tw):
        return arr
    scale = max(th / h, tw / w)
    nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
    im = Image.fromarray(arr).resize((nw, nh), Image.Resampling.BICUBIC)
    top, left = (nh - th) // 2, (nw - tw) // 2
    return np.asarray(im.crop((left, top, left + tw, top + th)), dtype=np.uint8)


def _safe_member_name(name: str) -> str:
    """A zip member name as a relative path; absolute paths and '..' are refused."""
    norm = name.replace("\\", "/")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if norm.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
        raise ProbeError(f"archive member {name!r} points outside the archive", "upload an archive with plain relative paths")
    return "/".join(parts)


def _walk(root: Path, follow_links: bool) -> list[Path]:
    """Files below ``root`` (``os.walk``); linked folders are entered only when ``follow_links``."""
    out = []
    for here, dirs, files in os.walk(root, followlinks=follow_links):
        dirs.sort()
        out += [Path(here) / f for f in files if (Path(here) / f).is_file()]
    return out
