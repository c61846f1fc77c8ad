"""translate: image-to-image translation (pix2pix, CycleGAN) for training, batch conversion
and a browser demo."""

__version__ = "0.1.0"
