"""Photos of an activity as the summary keeps them: pure image processing, bytes in and out.

A photo from a phone arrives as JPEG, PNG or HEIC (iPhones), up to 10 MB, often 12–48
megapixels, turned by an EXIF orientation tag and carrying the place it was taken (GPS).
What is kept is a JPEG turned upright, at most ``MAX_EDGE`` pixels on its long side, with
no EXIF at all, plus a thumbnail. Anything that is not such an image is refused with a
message for the person who chose it: not an image, too large, too many pixels (a
decompression bomb: a small file that unpacks to gigabytes), or a damaged file.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import pillow_heif
from flask_babel import gettext as _
from PIL import Image, ImageOps

# HEIC/HEIF (iPhone photos) through libheif; Pillow then opens them like any format.
pillow_heif.register_heif_opener()

MAX_PHOTO_BYTES = 10 * 1024 * 1024
# A 48-megapixel phone photo is 8000 x 6000; decoding one takes ~150 MB of memory.
MAX_PIXELS = 50_000_000
MAX_EDGE = 2048
THUMBNAIL_EDGE = 480
JPEG_QUALITY = 85
THUMBNAIL_QUALITY = 80
ACCEPTED_FORMATS = ("JPEG", "PNG", "HEIF")


class PhotoRefused(ValueError):
    """A file that cannot be kept as a photo; the message is for people."""


@dataclass(frozen=True)
class ProcessedPhoto:
    """The JPEG to keep, its thumbnail, and the kept size in pixels."""

    jpeg: bytes
    thumbnail: bytes
    width: int
    height: int


def process_photo(data: bytes, name: str = "") -> ProcessedPhoto:
    """Check ``data`` and turn it into the JPEG and thumbnail to keep; PhotoRefused else."""
    label = name or _("照片")
    if not data:
        raise PhotoRefused(_("“%(name)s”是空文件。", name=label))
    if len(data) > MAX_PHOTO_BYTES:
        raise PhotoRefused(
            _(
                "“%(name)s”超过 %(mb)s MB，请选择较小的照片。",
                name=label,
                mb=MAX_PHOTO_BYTES // (1024 * 1024),
            )
        )
    image = _decoded(data, label)
    try:
        upright = ImageOps.exif_transpose(image)
        upright = _on_white(upright)
        upright.thumbnail((MAX_EDGE, MAX_EDGE), Image.Resampling.LANCZOS)
        jpeg = _jpeg(upright, JPEG_QUALITY, image.info.get("icc_profile"))
        small = upright.copy()
        small.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE), Image.Resampling.LANCZOS)
        thumbnail = _jpeg(small, THUMBNAIL_QUALITY, image.info.get("icc_profile"))
    except (OSError, ValueError) as exc:
        raise PhotoRefused(_damaged(label)) from exc
    return ProcessedPhoto(
        jpeg=jpeg, thumbnail=thumbnail, width=upright.width, height=upright.height
    )


def _decoded(data: bytes, label: str) -> Image.Image:
    """The decoded image, after checking its format and pixel count from the header."""
    not_an_image = _("“%(name)s”不是可识别的照片，请上传 JPEG、PNG 或 HEIC 格式。", name=label)
    too_many_pixels = _(
        "“%(name)s”像素过多（最多 %(mp)s 百万像素），请缩小后再上传。",
        name=label,
        mp=MAX_PIXELS // 1_000_000,
    )
    with warnings.catch_warnings():
        # Pillow warns past Image.MAX_IMAGE_PIXELS and raises past twice that; both are
        # refusals here, as is anything over our own, lower bound.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise PhotoRefused(too_many_pixels) from None
        except (OSError, ValueError, SyntaxError):
            raise PhotoRefused(not_an_image) from None
        width, height = image.size
        if width * height > MAX_PIXELS or width < 1 or height < 1:
            raise PhotoRefused(too_many_pixels)
        if image.format == "JPEG" and max(width, height) > MAX_EDGE:
            # Let the JPEG decoder scale by 1/2, 1/4 or 1/8 while decoding, to no less
            # than the kept size: a quarter or less of the memory and time.
            ratio = MAX_EDGE / max(width, height)
            image.draft("RGB", (math.ceil(width * ratio), math.ceil(height * ratio)))
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise PhotoRefused(too_many_pixels) from None
        except Exception as exc:  # noqa: BLE001 - any decoder failure means a damaged file
            raise PhotoRefused(_damaged(label)) from exc
    return image


def _damaged(label: str) -> str:
    return _("“%(name)s”已损坏或不完整，无法读取，请重新选择。", name=label)


def _on_white(image: Image.Image) -> Image.Image:
    """RGB for JPEG: transparent parts (a PNG's) become white, not black."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _jpeg(image: Image.Image, quality: int, icc_profile: bytes | None) -> bytes:
    """JPEG bytes with no EXIF, XMP or comment: Pillow writes only what it is given (the
    colour profile is kept, so phone colours stay right)."""
    out = io.BytesIO()
    options = {"icc_profile": icc_profile} if icc_profile else {}
    image.save(out, "JPEG", quality=quality, optimize=True, progressive=True, **options)
    return out.getvalue()
