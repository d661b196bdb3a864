"""Generators for the corpus's inputs: encoded images, damaged files and archives, built in memory."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image

__all__ = ["image_bytes", "noise", "FORMATS", "flip_byte", "zip_bytes", "png_with_size", "set_zip_flag", "set_zip_method"]

FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "gif": "GIF", "tif": "TIFF", "webp": "WEBP", "ppm": "PPM"}


def noise(seed: int = 0, h: int = 32, w: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def image_bytes(fmt: str = "png", arr: np.ndarray | None = None, seed: int = 0, **save) -> bytes:
    """``arr`` (default: noise) encoded as ``fmt`` (a key of :data:`FORMATS`)."""
    arr = noise(seed) if arr is None else arr
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, FORMATS[fmt], **save)
    return buf.getvalue()


def flip_byte(data: bytes, at: float) -> bytes:
    """``data`` with the byte at fraction ``at`` of its length inverted."""
    b = bytearray(data)
    b[min(int(len(b) * at), len(b) - 1)] ^= 0xFF
    return bytes(b)


def png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels but holds almost no data (a pixel bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buf.getvalue()


def _patch_headers(data: bytes, offset_in_header: int, value: int, size: int, local: bool = True) -> bytes:
    """Overwrite a field in every central (and local) file header of a zip."""
    b = bytearray(data)
    for sig, off in ((b"PK\x01\x02", offset_in_header + 2), (b"PK\x03\x04", offset_in_header) if local else (b"", 0)):
        if not sig:
            continue
        i = b.find(sig)
        while i >= 0:
            b[i + off : i + off + size] = value.to_bytes(size, "little")
            i = b.find(sig, i + 4)
    return bytes(b)


def set_zip_flag(data: bytes, flag: int) -> bytes:
    """Mark every member with general-purpose flag bits (0x1: encrypted)."""
    return _patch_headers(data, 6, flag, 2)


def set_zip_method(data: bytes, method: int) -> bytes:
    """Claim compression ``method`` for every member (e.g. 99, AES, which Python cannot read)."""
    return _patch_headers(data, 8, method, 2)
