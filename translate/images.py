"""The one place that owns the image value convention and image files.

Convention everywhere else in the package: float tensors, RGB, NCHW (or CHW for one image),
values in [-1, 1]. Files on disk are decoded to uint8 RGB arrays (H, W, 3) with the EXIF
orientation applied, whatever their mode (1, L, LA, P, RGBA, I;16, I, F, CMYK, YCbCr, ...).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps

from translate.files import atomic_write

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm",
                    ".gif")

# Refuse decompression bombs: an image above the limit is an error, found from its header
# before its pixels are decoded. Callers choose lower limits (training, the demo) or higher
# ones (conversion, up to Pillow's own ceiling, set here).
DEFAULT_MAX_PIXELS = 200_000_000
CEILING_PIXELS = 1_000_000_000
Image.MAX_IMAGE_PIXELS = CEILING_PIXELS


class ImageError(ValueError):
    """A file that is not an image PIL can decode, or is damaged: ``path`` and ``reason``
    (the message is ``"<path>: <reason>"``)."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason  # path: a Path, a name, or a file object


class TooLarge(ImageError):
    """An image whose header declares more pixels than allowed: ``pixels`` (None when the
    decoder refused it before saying how many) and ``limit``."""

    def __init__(self, path, pixels: int | None, limit: int, size: str = ""):
        said = (f"{size} is {pixels / 1e6:.3g} megapixels" if pixels is not None
                else f"declares more than {Image.MAX_IMAGE_PIXELS * 2 / 1e6:.0f} megapixels")
        super().__init__(path, f"{said}, above the limit of {limit / 1e6:.3g}")
        self.pixels, self.limit = pixels, limit


def _bomb_pixels(err: Exception) -> int | None:
    """The pixel count Pillow's decompression-bomb error states, if it states one."""
    import re

    found = re.search(r"\((\d+) pixels\)", str(err))
    return int(found[1]) if found else None


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (by extension), sorted; hidden files are ignored."""
    folder = Path(folder)
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found
                  if p.is_file() and is_image_file(p) and not p.name.startswith("."))


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 RGB (H, W, 3). High bit depths are scaled, not clipped."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode == "F":
            top = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
        else:
            top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        gray = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def _alpha(img: Image.Image) -> np.ndarray | None:
    """The alpha channel as uint8 (H, W), or None when the image has none."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return np.asarray(img.convert("RGBA"), dtype=np.uint8)[..., 3].copy()
    return None


def check_pixels(path, width: int, height: int, max_pixels: int) -> None:
    """:class:`ImageError` when ``width * height`` is above ``max_pixels``."""
    if width * height > max_pixels:
        raise TooLarge(path, width * height, max_pixels, f"{width}x{height}")


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode an image file to (uint8 RGB (H, W, 3), uint8 alpha (H, W) or None), with the
    EXIF orientation applied.

    Raises :class:`ImageError` for files that are not images or are damaged, and for images
    of more than ``max_pixels`` pixels (found from the header, before decoding).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                check_pixels(path, *img.size, min(max_pixels, CEILING_PIXELS))
                img = ImageOps.exif_transpose(img)
                img.load()
                return _to_rgb_array(img), _alpha(img)
    except ImageError:
        raise
    except Image.DecompressionBombError as err:
        raise TooLarge(path, _bomb_pixels(err), min(max_pixels, CEILING_PIXELS)) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as err:
        raise ImageError(path, f"cannot read image ({err})") from None


def load_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to uint8 RGB (H, W, 3); see :func:`load_image`."""
    return load_image(path, max_pixels)[0]


def _header_orientation(img: Image.Image) -> int:
    """The EXIF orientation (1-8) found without decoding pixels. Pillow's ``getexif`` decodes
    a whole PNG when it has no eXIf chunk before the image data; here such a PNG counts as
    unrotated (eXIf after the pixel data is rare, and the pixel count is the same either way)."""
    if img.format == "PNG":
        raw = img.info.get("exif")
        if not raw:
            return 1
        exif = Image.Exif()
        exif.load(raw)
        return exif.get(0x0112, 1)
    return img.getexif().get(0x0112, 1)


def image_size(path: str | Path | BinaryIO, max_pixels: int = DEFAULT_MAX_PIXELS
               ) -> tuple[int, int]:
    """(width, height) after EXIF orientation, reading only the header: a file whose pixel
    data is damaged or cut short still reports its size (``load_image`` finds that out).
    :class:`ImageError` for an image of more than ``max_pixels`` pixels."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            check_pixels(path, w, h, min(max_pixels, CEILING_PIXELS))
            orientation = _header_orientation(img)
    except ImageError:
        raise
    except Image.DecompressionBombError as err:
        raise TooLarge(path, _bomb_pixels(err), min(max_pixels, CEILING_PIXELS)) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(path, f"cannot read image ({err})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def to_channels(rgb: np.ndarray, channels: int) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> (H, W, channels): unchanged for 3, ITU-R 601 luma for 1.
    A 1-channel array is widened to RGB for channels=3."""
    if rgb.shape[-1] == channels:
        return rgb
    if channels == 3:
        return np.repeat(rgb[..., :1], 3, axis=2)
    if channels == 1:
        luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
        return np.clip(luma + 0.5, 0, 255).astype(np.uint8)[..., None]
    raise ValueError(f"images have 1 or 3 channels, not {channels}")


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> float32 (C, H, W) in [-1, 1]."""
    if array.ndim == 2:
        array = array[..., None]
    array = np.require(array, requirements=["C", "W"])  # copies only read-only or strided
    return torch.from_numpy(array).permute(2, 0, 1).float().div(127.5) - 1


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """float (C, H, W) in [-1, 1] -> uint8 (H, W, C); values outside the range are clipped."""
    x = ((tensor.detach().float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.permute(1, 2, 0).numpy()


ALPHA_FORMATS = (".png", ".webp", ".tif", ".tiff")
PIL_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
               ".tif": "TIFF", ".tiff": "TIFF"}


def save_image(array: np.ndarray, path: str | Path, quality: int = 95,
               alpha: np.ndarray | None = None, png_level: int = 6) -> Path:
    """Write uint8 (H, W, 3) RGB or (H, W, 1) gray to ``path``, atomically; the format
    follows the extension. ``alpha`` (H, W) is stored where the format has an alpha channel
    (PNG, WebP, TIFF) and dropped otherwise. JPEG and WebP use ``quality`` (JPEG without
    chroma subsampling); PNG is compressed at zlib level ``png_level`` (0-9: 6 is Pillow's
    default; 1 writes about 5x faster and about 13 % larger)."""
    path = Path(path)
    ext = path.suffix.lower()
    img = Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array)
    if alpha is not None and ext in ALPHA_FORMATS:
        img = img.convert("RGB") if img.mode != "RGB" else img
        img.putalpha(Image.fromarray(alpha))
    options = {}
    if ext in (".jpg", ".jpeg"):
        options = {"quality": quality, "subsampling": 0}
    elif ext == ".webp":
        options = {"quality": quality}
    fmt = PIL_FORMATS.get(ext, "PNG")
    if fmt == "PNG":
        options = {"compress_level": png_level}
    return atomic_write(path, lambda tmp: img.save(tmp, format=fmt, **options))


def grid(rows: list[list[torch.Tensor]], pad: int = 2, columns: tuple[str, ...] = (),
         title: str = "") -> np.ndarray:
    """Tile images (C, H, W) in [-1, 1] into one uint8 RGB picture, one list per row. With
    ``title`` (e.g. the step) and ``columns``, lines of text on top say what the picture
    shows and name each column, so it can be read on its own."""
    h = max(t.shape[-2] for row in rows for t in row)
    w = max(t.shape[-1] for row in rows for t in row)
    cols = max(len(row) for row in rows)
    band = _LABEL_HEIGHT * (bool(columns) + bool(title))
    out = np.full((band + len(rows) * (h + pad) + pad, cols * (w + pad) + pad, 3), 255,
                  np.uint8)
    for r, row in enumerate(rows):
        for c, t in enumerate(row):
            img = to_channels(to_uint8(t), 3)
            y, x = band + pad + r * (h + pad), pad + c * (w + pad)
            out[y:y + img.shape[0], x:x + img.shape[1]] = img
    if band:
        _label(out, columns, title, w + pad, pad)
    return out


_LABEL_HEIGHT = 14


def _label(out: np.ndarray, columns: tuple[str, ...], title: str, step: int, pad: int) -> None:
    """Write ``title`` on the first line of the top band of ``out`` and the column names on
    the next (in place); each name is cut to its column's width."""
    from PIL import ImageDraw, ImageFont

    img = Image.fromarray(out)
    draw, font = ImageDraw.Draw(img), ImageFont.load_default()
    if title:
        draw.text((pad, 1), title, fill=(0, 0, 0), font=font)
    y = _LABEL_HEIGHT if title else 0
    for c, name in enumerate(columns):
        while name and draw.textlength(name, font=font) > step - 2:
            name = name[:-1]
        draw.text((pad + c * step, y + 1), name, fill=(0, 0, 0), font=font)
    out[...] = np.asarray(img)
