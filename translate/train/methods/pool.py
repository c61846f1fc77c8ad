"""History of generated images for discriminator updates (Shrivastava et al. 2017; used by
CycleGAN, Zhu et al. 2017, section 4).

Training D on a buffer of earlier generator outputs, not only the latest ones, damps
oscillation between G and D. Until the pool is full every new image is stored and returned;
afterwards each new image is, with probability 1/2, returned as is, and otherwise swapped
for a random stored image, which is returned while the new one takes its place.
"""

from __future__ import annotations

import random

import torch


class ImagePool:
    """``query(images)`` -> a batch of the same shape mixing fresh and earlier images.

    ``images``: (N, C, H, W), detached. The pool's random choices come from its own
    generator, seeded at construction, and its contents and random state are part of
    ``state_dict()`` so that resumed training draws exactly as uninterrupted training.
    """

    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.random() < 0.5:
                i = self.rng.randrange(self.size)
                out.append(self.images[i])
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        stored = torch.stack(self.images) if self.images else torch.empty(0)
        return {"images": stored, "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        self.images = list(state["images"].unbind(0)) if state["images"].numel() else []
        self.rng.setstate(state["rng"])
