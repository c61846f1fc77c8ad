"""Augmentation on the training device (``data.gpu_augment``), so loader processes only
decode and resize and a fast GPU is not kept waiting by the CPU.

Loader workers return each training item resized to ``load_size`` x ``load_size`` as uint8
(a quarter of the bytes of float images) with its stream seed (:class:`DecodeOnly`). On the
device, :class:`DeviceCrop` cuts a ``crop_size`` crop and flips it horizontally with
probability 1/2, with kornia; A and B of a pair get the same crop and flip, the two images of
an unpaired item independent ones.

The distributions are those of the CPU pipeline (offsets uniform over every position,
flips with probability 1/2), and every draw is a function of the item's seed alone (see
:mod:`translate.data.datasets`), so crops do not depend on the number of workers and a resumed run
sees the crops of an uninterrupted one. They are not the CPU pipeline's crops: switching
``data.gpu_augment`` changes the sequence of crops, not the method.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from translate.data.datasets import train_transform


def to_uint8_chw(x: torch.Tensor) -> torch.Tensor:
    """float (C, H, W) in [-1, 1] that came from uint8 (:func:`images.to_tensor`) -> the
    same uint8 values, exactly."""
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [-1, 1], the same arithmetic as images.to_tensor."""
    return x.float().div(127.5) - 1


class DecodeOnly(Dataset):
    """A training dataset whose random items are only decoded and resized.

    Keys ``(index, seed)`` (the training stream) give ``{"a", "b"}``: uint8 (C, load_size,
    load_size), ``"seed"`` and ``"index"``. Plain indices (sample grids, evaluation) pass
    through to the dataset unchanged (resize and centre crop, float).
    """

    def __init__(self, dataset, load_size: int):
        self.dataset = dataset
        dataset.random = train_transform(load_size, load_size, flip=False)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        item = self.dataset[key]
        if not isinstance(key, tuple):
            return item
        return {"a": to_uint8_chw(item["a"]), "b": to_uint8_chw(item["b"]),
                "seed": int(key[1]), "index": item["index"]}


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


class DeviceCrop:
    """Random ``crop_size`` crops and horizontal flips of uint8 batches on their device.

    ``paired``: A and B of an item share one crop and flip (pix2pix); otherwise each image
    gets its own (CycleGAN).
    """

    def __init__(self, load_size: int, crop_size: int, flip: bool, paired: bool = True):
        import kornia.geometry.transform as kgt

        self._crop, self._hflip = kgt.crop_by_indices, kgt.hflip
        self.load_size, self.crop_size, self.flip, self.paired = (load_size, crop_size, flip,
                                                                  paired)

    def params(self, seeds: list[int]) -> dict[str, list[tuple[int, int, bool]]]:
        """Per image key ("a", "b"): one (top, left, flipped) per seed."""
        draws = [crop_params(s, self.load_size, self.crop_size, self.flip,
                             1 if self.paired else 2) for s in seeds]
        return {"a": [d[0] for d in draws], "b": [d[-1] for d in draws]}

    def apply(self, images: torch.Tensor, params: list[tuple[int, int, bool]]) -> torch.Tensor:
        """uint8 (N, C, load, load) -> float (N, C, crop, crop) in [-1, 1]."""
        c = self.crop_size
        boxes = torch.tensor([[[x, y], [x + c - 1, y], [x + c - 1, y + c - 1], [x, y + c - 1]]
                              for y, x, _ in params], dtype=torch.float32)
        out = self._crop(images, boxes, size=(c, c))
        flipped = [k for k, (_, _, f) in enumerate(params) if f]
        if flipped:
            mask = torch.zeros(len(params), 1, 1, 1, dtype=torch.bool)
            mask[flipped] = True
            out = torch.where(mask.to(out.device, non_blocking=True), self._hflip(out), out)
        return to_float(out)

    def __call__(self, raw: dict, device: torch.device) -> dict[str, torch.Tensor]:
        """A loader batch of :class:`DecodeOnly` items -> {"a", "b"} float on ``device``."""
        params = self.params(raw["seed"].tolist())
        return {k: self.apply(raw[k].to(device, non_blocking=True), params[k])
                for k in ("a", "b")}
