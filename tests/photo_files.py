"""Image files as phones and attackers send them, built in memory for the summary tests."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112
# 30°15'N 120°10'E: somewhere in Hangzhou.
GPS = {1: "N", 2: (30.0, 15.0, 0.0), 3: "E", 4: (120.0, 10.0, 0.0)}


def photo(size=(3000, 2000), fmt="JPEG", orientation: int | None = None, gps=True, **kw) -> bytes:
    """A phone photo: a gradient (so it compresses like one), EXIF with GPS and orientation."""
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.paste((200, 30, 30), (0, 0, width // 4, height // 4))  # a red corner: find "up"
    exif = Image.Exif()
    if gps:
        exif[GPS_IFD] = GPS
    if orientation:
        exif[ORIENTATION] = orientation
    out = io.BytesIO()
    image.save(out, fmt, exif=exif, **kw)
    return out.getvalue()


def transparent_png(size=(64, 48)) -> bytes:
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape:
    a few hundred bytes that would unpack to gigabytes)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 1024, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", pixels)
        + _chunk(b"IEND", b"")
    )


def read_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
