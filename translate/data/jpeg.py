"""JPEG decoding and encoding on the compute device (nvJPEG through torchvision on CUDA).

Loader workers then only read the file's bytes and check its header. Conversion decodes
batches of equal-size images on the GPU in one call, translates them there and, for JPEG
outputs, encodes them there too, so only compressed bytes cross the PCIe bus. Training with
``data.gpu_augment`` on CUDA decodes its JPEG files there as well
(:mod:`translate.train.augment`).

A file goes this way only if it is a JPEG that needs nothing the CPU path does beyond plain
decoding: RGB or grayscale (not CMYK), EXIF orientation 1 (none), within the size limit.
Everything else, and any batch the device decoder rejects, is decoded on the CPU as before.
The device decoder's output can differ from libjpeg's by a few grey levels (its inverse DCT
and chroma upsampling differ); the encoder writes 4:4:4 chroma like the CPU path.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

JPEG_SUFFIXES = (".jpg", ".jpeg")


@dataclass
class EncodedJpeg:
    """The bytes of a JPEG file that can be decoded on the device; ``shape`` is the decoded
    (H, W, 3), as the CPU path's arrays have."""
    data: np.ndarray  # uint8 (L,)
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, 3)


def read_jpeg(path: str | Path) -> EncodedJpeg | None:
    """The file's bytes if it is a plain JPEG (see the module docstring), else None (decode
    it on the CPU). Reads only the header before deciding."""
    path = Path(path)
    if path.suffix.lower() not in JPEG_SUFFIXES:
        return None
    try:
        with Image.open(path) as img:
            if img.format != "JPEG" or img.mode not in ("RGB", "L"):
                return None
            if img.getexif().get(0x0112, 1) != 1:
                return None
            w, h = img.size
    except Exception:  # damaged or not an image: the CPU path reports it
        return None
    if w * h > (Image.MAX_IMAGE_PIXELS or float("inf")):
        return None
    return EncodedJpeg(np.fromfile(path, dtype=np.uint8), h, w)


def decode_jpegs(items: list[EncodedJpeg], device: torch.device) -> torch.Tensor:
    """Decode equal-size JPEGs on ``device`` in one call: uint8 (N, 3, H, W). Raises
    RuntimeError when the decoder rejects any of them."""
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecation notice
        out = decode_jpeg([torch.from_numpy(it.data) for it in items], mode=ImageReadMode.RGB,
                          device=device)
    return torch.stack(out)


def decode_each(data: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """JPEG file bytes (uint8 (L,) tensors) -> uint8 RGB (3, H, W) on ``device``, one call
    for all; when the decoder rejects the call, image by image, with None for each image it
    rejects."""
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return list(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
        except RuntimeError:
            pass
        out: list[torch.Tensor | None] = []
        for one in data:
            try:
                out.append(decode_jpeg(one, mode=ImageReadMode.RGB, device=device))
            except RuntimeError:
                out.append(None)
        return out


def encode_jpegs(images: torch.Tensor, quality: int) -> list[bytes]:
    """uint8 (N, 3, H, W) on a CUDA device -> JPEG file contents, encoded on the device."""
    from torchvision.io import encode_jpeg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoded = encode_jpeg(list(images.contiguous().unbind(0)), quality=quality)
    lengths = [len(e) for e in encoded]  # known on the host: no device read
    joined = torch.cat(encoded).cpu().numpy()  # one copy back for the whole batch
    ends = np.cumsum(lengths)
    return [joined[end - n:end].tobytes() for n, end in zip(lengths, ends)]


def to_uint8_batch(y: torch.Tensor) -> torch.Tensor:
    """float (N, C, H, W) in [-1, 1] -> uint8, on the tensor's device, rounded exactly as
    :func:`translate.images.to_uint8`."""
    return ((y.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def input_from_uint8(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 RGB (N, 3, H, W) -> float (N, channels, H, W) in [-1, 1] on the same device,
    with the arithmetic of ``images.to_tensor(images.to_channels(...))``."""
    if channels == 1:
        rgb = images.double()
        luma = rgb[:, 0] * 0.299 + rgb[:, 1] * 0.587 + rgb[:, 2] * 0.114
        images = (luma + 0.5).clamp(0, 255).to(torch.uint8)[:, None]
    return images.float().div(127.5) - 1
