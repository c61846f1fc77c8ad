"""Augmentation on the training device (``data.gpu_augment``), so loader processes only
decode files and a fast GPU is not kept waiting by the CPU.

Loader workers return each training item's images as decoded, uint8 (H, W, C) at the file's
own size (no resize, no float conversion), with the item's stream seed
(:class:`DecodeOnly`). On CUDA they go further and hand over a plain JPEG file's bytes,
which the GPU decodes (:mod:`translate.data.jpeg`). On the device, :class:`DeviceAugment`
then does what the CPU pipeline does (:func:`translate.data.datasets.train_transform`):

1. resize to ``load_size`` x ``load_size``, bicubic (a = -0.75, pixel centres aligned, no
   antialiasing: OpenCV's ``INTER_CUBIC``), rounded back to whole grey levels;
2. a random ``crop_size`` crop and, with probability 1/2, a horizontal flip: A and B of a
   pair share theirs, the two images of an unpaired item get independent ones;
3. conversion to float in [-1, 1].

The resize differs from OpenCV's fixed-point arithmetic by at most one grey level on a
small fraction of pixels (tests/test_speed_options.py measures it); the JPEG decoder of a GPU
can differ from libjpeg by a few levels. The distributions are those of the CPU pipeline
(offsets uniform over every position, flips with probability 1/2), and every draw is a
function of the item's seed alone (see :mod:`translate.data.datasets`), so crops do not
depend on the number of workers and a resumed run sees the crops of an uninterrupted one.
They are not the CPU pipeline's draws: switching ``data.gpu_augment`` changes the sequence
of crops, not the method.
"""

from __future__ import annotations

import io
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from translate.data.jpeg import EncodedJpeg, decode_each


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 values (N, C, H, W), as uint8 or as whole numbers in a float tensor -> float32
    in [-1, 1], the same arithmetic as images.to_tensor."""
    return x.float().div(127.5) - 1


def _as_tensor(image) -> torch.Tensor:
    """A decoded image -> uint8 (H, W, C); a JPEG's bytes -> uint8 (L,)."""
    if isinstance(image, EncodedJpeg):
        return torch.from_numpy(image.data)
    return torch.from_numpy(np.require(image, requirements=["C", "W"]))


class DecodeOnly(Dataset):
    """A training dataset whose random items are only decoded.

    Keys ``(index, seed)`` (the training stream) give ``{"a", "b"}``: uint8 (H, W, C) at
    the file's size, or with ``jpeg`` a plain JPEG file's bytes, uint8 (L,); ``"seed"`` and
    ``"index"``. Batch them with :meth:`collate` (the images' sizes differ). Plain indices
    (sample grids, evaluation) pass through to the dataset unchanged (resize and centre
    crop, float).
    """

    def __init__(self, dataset, jpeg: bool = False):
        self.dataset, self.jpeg = dataset, jpeg

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            return self.dataset[key]
        a, b = self.dataset.decode(key, self.jpeg)
        return {"a": _as_tensor(a), "b": _as_tensor(b), "seed": int(key[1]),
                "index": int(key[0])}

    @staticmethod
    def collate(items: list[dict]) -> dict:
        """Items -> {"a", "b"}: lists of tensors; "seed", "index": int64 (N,)."""
        return {"a": [it["a"] for it in items], "b": [it["b"] for it in items],
                "seed": torch.tensor([it["seed"] for it in items]),
                "index": torch.tensor([it["index"] for it in items])}


def crop_params(seed: int, load_size: int, crop_size: int, flip: bool, draws: int
                ) -> list[tuple[int, int, bool]]:
    """``draws`` (top, left, flipped) tuples drawn from ``seed`` alone."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 0x63726F70])  # "crop"
    span = load_size - crop_size + 1
    out = []
    for _ in range(draws):
        top, left = (int(v) for v in rng.integers(0, span, size=2))
        out.append((top, left, bool(flip and rng.random() < 0.5)))
    return out


def resize_bicubic(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 or float (N, C, H, W) of whole grey levels -> float (N, C, size, size) of whole
    grey levels in [0, 255]: OpenCV's INTER_CUBIC geometry (see the module docstring)."""
    x = images.float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    return x.round_().clamp_(0, 255)


class DeviceAugment:
    """Resize, random crops and horizontal flips of decoded uint8 images on their device.

    ``paired``: A and B of an item share one crop and flip (pix2pix); otherwise each image
    gets its own (CycleGAN).
    """

    def __init__(self, load_size: int, crop_size: int, flip: bool, paired: bool = True):
        self.load_size, self.crop_size, self.flip, self.paired = (load_size, crop_size, flip,
                                                                  paired)
        self._warned = False

    def params(self, seeds: list[int]) -> dict[str, list[tuple[int, int, bool]]]:
        """Per image key ("a", "b"): one (top, left, flipped) per seed."""
        draws = [crop_params(s, self.load_size, self.crop_size, self.flip,
                             1 if self.paired else 2) for s in seeds]
        return {"a": [d[0] for d in draws], "b": [d[-1] for d in draws]}

    def on_device(self, images: list[torch.Tensor], device: torch.device
                  ) -> list[torch.Tensor]:
        """Loader images (uint8 (H, W, C), or JPEG bytes (L,)) -> uint8 (C, H, W) on
        ``device``; JPEGs are decoded there in one call. A JPEG that neither the device
        nor Pillow can decode (a damaged file whose header was fine) is reported and
        replaced by another image of the batch."""
        # JPEG bytes stay on the host: the decoder reads them there, whatever its device
        out = [im if im.dim() == 1 else im.to(device, non_blocking=True).permute(2, 0, 1)
               for im in images]
        encoded = [k for k, im in enumerate(images) if im.dim() == 1]
        if not encoded:
            return out
        for k, image in zip(encoded, decode_each([images[k] for k in encoded], device)):
            out[k] = image if image is not None else self._on_host(images[k], device)
        good = [im for im in out if im is not None]
        if not good:
            raise RuntimeError("no image of this training batch could be decoded")
        if len(good) < len(out):
            print(f"warning: {len(out) - len(good)} damaged JPEG file(s) in this batch were "
                  "replaced by another image of the batch", file=sys.stderr)
        return [im if im is not None else good[0] for im in out]

    def _on_host(self, data: torch.Tensor, device: torch.device) -> torch.Tensor | None:
        """A JPEG the device decoder rejected, decoded by Pillow (as the CPU path would);
        None when Pillow cannot either."""
        from PIL import Image

        if not self._warned:
            self._warned = True
            print("warning: the device's JPEG decoder rejected a training image; such "
                  "images are decoded on the CPU", file=sys.stderr)
        try:
            with Image.open(io.BytesIO(data.numpy().tobytes())) as img:
                rgb = np.asarray(img.convert("RGB"))
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
        return torch.from_numpy(rgb).permute(2, 0, 1).to(device)

    def resized(self, images: list[torch.Tensor]) -> torch.Tensor:
        """uint8 (C, H, W) images of any sizes -> float (N, C, load, load), whole grey
        levels; images of one size are resized in one call."""
        by_size: dict[tuple, list[int]] = {}
        for k, im in enumerate(images):
            by_size.setdefault(tuple(im.shape), []).append(k)
        out = [None] * len(images)
        for ks in by_size.values():
            for k, im in zip(ks, resize_bicubic(torch.stack([images[k] for k in ks]),
                                                self.load_size)):
                out[k] = im
        return torch.stack(out)

    def apply(self, images: torch.Tensor, params: list[tuple[int, int, bool]]) -> torch.Tensor:
        """(N, C, load, load) of grey levels -> float (N, C, crop, crop) in [-1, 1]."""
        c = self.crop_size
        out = torch.stack([im[:, top:top + c, left:left + c]
                           for im, (top, left, _) in zip(images, params)])
        flipped = [k for k, (_, _, f) in enumerate(params) if f]
        if flipped:
            mask = torch.zeros(len(params), 1, 1, 1, dtype=torch.bool)
            mask[flipped] = True
            out = torch.where(mask.to(out.device, non_blocking=True), out.flip(-1), out)
        return to_float(out)

    def __call__(self, raw: dict, device: torch.device) -> dict[str, torch.Tensor]:
        """A loader batch of :class:`DecodeOnly` items -> {"a", "b"} float on ``device``."""
        params = self.params(raw["seed"].tolist())  # a CPU tensor: no device read
        return {k: self.apply(self.resized(self.on_device(raw[k], device)), params[k])
                for k in ("a", "b")}
