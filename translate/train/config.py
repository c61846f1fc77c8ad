"""Typed training configuration: defaults in one place, YAML in, dotted overrides, validation.

A config is a tree of dataclasses. ``load_config(path, ["train.lr=1e-4"])`` reads a YAML
file, applies ``key.sub=value`` overrides, fills defaults (the paper's, per method), checks
every key and value, and returns a :class:`Config`. Unknown keys are an error that lists the
valid keys of their section; values outside a field's choices are an error that lists the
choices. ``Config.to_dict()`` gives the resolved config that is saved with every run.

Each method owns its options, the ``method`` section (:class:`~translate.train.methods.
pix2pix.Pix2PixOptions`, :class:`~translate.train.methods.cyclegan.CycleGANOptions`), and the
defaults it changes in the shared sections. The keys those options had before, ``loss.l1``,
``loss.mismatch``, ``loss.cycle``, ``loss.identity`` and ``train.pool_size``
(:data:`LEGACY_KEYS`), are still read and still readable as attributes; a method ignores
another method's options, as it always did.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from translate.data.datasets import TRAIN_MAX_MEGAPIXELS
from translate.train.diffaugment import parse_policy
from translate.train.fields import ConfigError, opt
from translate.train.methods import METHODS

__all__ = ["Config", "ConfigError", "LEGACY_KEYS", "RESUMABLE_CHANGES", "load_config",
           "config_from_dict", "changed_keys", "opt"]

# section.key -> the method option it now is (method.<name>)
LEGACY_KEYS = {"loss.l1": "l1", "loss.mismatch": "mismatch", "loss.cycle": "cycle",
               "loss.identity": "identity", "train.pool_size": "pool_size"}


class MovedOptions:
    """Reading a moved option through its old section (``config.loss.l1``) reads the method
    option (``config.method.l1``)."""

    def __getattr__(self, name: str):
        options = self.__dict__.get("_method")
        section = type(self).__name__.removesuffix("Config").lower()
        if options is not None and LEGACY_KEYS.get(f"{section}.{name}") == name \
                and hasattr(options, name):
            return getattr(options, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")


@dataclass
class DataConfig:
    root: str = opt("", "dataset folder (see the README for the layouts)")
    layout: str = opt("auto", "dataset layout", ("auto", "aligned", "paired", "unpaired"))
    direction: str = opt("a2b", "which domain is the input: a2b maps A to B", ("a2b", "b2a"))
    load_size: int = opt(286, "images are resized to load_size x load_size ...", minimum=1)
    crop_size: int = opt(256, "... then randomly cropped to crop_size x crop_size", minimum=1)
    flip: bool = opt(True, "random horizontal flips (the same for A and B of a pair)")
    workers: int | None = opt(None, "data loader worker processes (0 loads in the main "
                              "process; default: one per available core less one, 1 to 8)",
                              minimum=0)
    channels_a: int = opt(3, "channels of domain A images: 3 (RGB) or 1 (grayscale)", (1, 3))
    channels_b: int = opt(3, "channels of domain B images: 3 (RGB) or 1 (grayscale)", (1, 3))
    gpu_augment: bool = opt(False, "loader workers only decode and resize; random crops and "
                            "flips happen on the training device (same distribution, other "
                            "draws than the CPU pipeline)")
    max_megapixels: float = opt(TRAIN_MAX_MEGAPIXELS, "images larger than this are reported and left out "
                                "(each is decoded at full size every time it is drawn)",
                                minimum=0.01)


@dataclass
class GeneratorConfig:
    arch: str = opt("unet", "generator architecture (local: small, the same at any image "
                    "size; norm none)", ("unet", "resnet", "local"))
    ngf: int = opt(64, "width of the first layer", minimum=1)
    depth: int | None = opt(None, "U-Net: number of downsamplings (default 8); ResNet: number "
                            "of residual blocks (default 9 at crop_size >= 256, else 6); "
                            "local: residual blocks (default 4)",
                            minimum=1)
    norm: str = opt("batch", "normalisation layers", ("batch", "instance", "none"))
    dropout: bool = opt(True, "dropout (U-Net: the innermost full-width blocks; ResNet: in blocks)")
    upsample: str = opt("transpose", "U-Net and ResNet decoders: transposed convolutions (the "
                        "papers') or resize-convolutions (nearest x2 then 3x3; Odena et al. "
                        "2016)", ("transpose", "resize"))
    smooth: int = opt(0, "local: radius in pixels of a self-guided filter on the output that "
                      "flattens by construction (He et al. 2013, as White-box Cartoonization "
                      "filters its output; 0: none)", minimum=0)
    tones: int = opt(0, "local: lightness steps of a tone stage on the output that flattens "
                     "shading by construction, as cel shading does; the network chooses where "
                     "to apply it (0: none)", minimum=0)


@dataclass
class DiscriminatorConfig:
    arch: str = opt("patch", "discriminator architecture", ("patch", "pixel"))
    ndf: int = opt(64, "width of the first layer", minimum=1)
    layers: int = opt(3, "PatchGAN strided layers (3 gives the 70x70 PatchGAN)", minimum=1)
    norm: str = opt("batch", "normalisation layers", ("batch", "instance", "none"))
    spectral_norm: bool = opt(False, "spectral normalisation on every convolution")
    scales: int = opt(1, "discriminators at successively halved resolutions (pix2pixHD's "
                      "multi-scale discriminator uses 2 or 3; 1: one)", minimum=1)


@dataclass
class LossConfig(MovedOptions):
    gan: str = opt("vanilla", "adversarial loss", ("vanilla", "lsgan", "hinge", "wgan-gp"))
    gp: float = opt(10.0, "wgan-gp: gradient-penalty weight", minimum=0)
    diffaugment: str = opt("", "differentiable augmentation of every discriminator input, "
                           "real and generated alike (small datasets): comma-separated from "
                           "color, translation, cutout ('' = off)")


@dataclass
class TrainConfig(MovedOptions):
    iterations: int = opt(200_000, "number of training iterations (one G and one D step each)",
                          minimum=1)
    batch_size: int = opt(1, "images per iteration", minimum=1)
    lr: float = opt(2e-4, "Adam learning rate (G and D)", minimum=0)
    beta1: float = opt(0.5, "Adam beta1 (below 1)", minimum=0)
    beta2: float = opt(0.999, "Adam beta2 (below 1)", minimum=0)
    decay_from: int | None = opt(None, "iteration where linear LR decay to 0 starts "
                                 "(default: half of iterations)", minimum=0)
    clip_g: float = opt(0.0, "largest L2 norm of the generators' gradient: a larger one is "
                        "scaled down to it before the step (0: off); metrics.jsonl's "
                        "grad_norm_g is the norm before clipping", minimum=0)
    clip_d: float = opt(0.0, "the same for the discriminators' gradient (grad_norm_d)",
                        minimum=0)
    device: str = opt("auto", "where to train", ("auto", "cpu", "cuda"))
    seed: int = opt(0, "seed for weights, data order, augmentation and dropout", minimum=0)
    out: str = opt("", "run folder (default: runs/<config file name>)")
    log_every: int = opt(100, "iterations between metrics.jsonl lines", minimum=1)
    sample_every: int = opt(1000, "iterations between sample grids (0: never)", minimum=0)
    checkpoint_every: int = opt(5000, "iterations between checkpoints (and one at the end)",
                                minimum=1)
    samples: int = opt(4, "rows in a sample grid", minimum=1)
    eval_every: int = opt(0, "iterations between evaluations on the test split, logged to "
                          "metrics.jsonl; the best is kept as checkpoints/best.pt (0: never)",
                          minimum=0)
    eval_images: int = opt(50, "test images scored per evaluation", minimum=1)
    precision: str = opt("auto", "fp32, bf16 (autocast) or fp16 (autocast + loss scaling); "
                         "auto: bf16 on CUDA GPUs with native bf16, else fp32",
                         ("auto", "fp32", "bf16", "fp16"))
    channels_last: bool = opt(False, "networks and batches in the channels-last (NHWC) layout")
    compile: bool = opt(False, "torch.compile the networks (the first iterations pay the "
                        "compilation)")
    ema: float = opt(0.0, "decay of an exponential moving average of the generators' weights, "
                     "used for samples, evaluation and export (0: off; e.g. 0.999)", minimum=0)
    tensorboard: bool = opt(False, "also log to TensorBoard: event files in the run folder's "
                            "tb/ (pip install 'translate[tensorboard]')")
    on_collapse: str = opt("warn", "when the generator's outputs collapse (near-identical "
                           "for different inputs), the losses explode or its gradient is "
                           "zero: warn (say so, log it) or stop (stop training; the last checkpoint stays, and the "
                           "message names it)", ("warn", "stop"))


MODELS = tuple(METHODS)

# Keys that may change when a run is resumed; anything else must match the saved config.
RESUMABLE_CHANGES = {
    "train.iterations", "train.log_every", "train.sample_every", "train.checkpoint_every",
    "train.device", "data.workers", "data.root", "train.eval_every", "train.eval_images",
    "train.precision", "train.channels_last", "train.compile", "train.decay_from",
    "train.out",  # the run folder may be moved or named by another path
    "train.on_collapse", "train.tensorboard",
    "train.lr",  # lower it to continue a run that collapsed; the schedule's shape stays
    "train.clip_g", "train.clip_d",  # clip to carry a run past a divergence
}


@dataclass
class Config:
    model: str = opt("pix2pix", "training method", MODELS)
    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: Any = field(default_factory=lambda: METHODS["pix2pix"].options())

    def __post_init__(self) -> None:
        for section in (self.loss, self.train):  # config.loss.l1 reads config.method.l1
            section.__dict__["_method"] = self.method

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @property
    def decay_from(self) -> int:
        t = self.train
        return t.iterations // 2 if t.decay_from is None else t.decay_from


def _section_classes() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)
            if f.name not in ("model", "method")}


def valid_keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _unknown_key(where: str, key: str, cls: type) -> ConfigError:
    keys = valid_keys(cls)
    close = difflib.get_close_matches(key, keys, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    place = f"in '{where}'" if where else "at the top level"
    return ConfigError(f"unknown key '{key[:40]}' {place}{hint}; valid keys {place}: "
                       + ", ".join(keys), f"{where}.{key}" if where else key)


def _coerce(name: str, value: Any, f: dataclasses.Field, hint: Any) -> Any:
    """Check one value against its field's type, choices and bound; return it typed."""
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
    base = next((a for a in typing.get_args(hint) if a is not type(None)), hint) if optional \
        else hint
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{name} must be set", name)
    try:
        if base is bool:
            if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1"):
                value = True
            elif isinstance(value, str) and value.lower() in ("false", "no", "off", "0"):
                value = False
            if not isinstance(value, bool):
                raise TypeError
        elif base is int:
            if isinstance(value, bool):
                raise TypeError
            number = float(value) if isinstance(value, str) else value
            if not isinstance(number, (int, float)) or int(number) != number:
                raise TypeError
            value = int(number)
        elif base is float:
            if isinstance(value, bool):
                raise TypeError
            value = float(value)
        elif base is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise TypeError
            value = str(value)
    except (TypeError, ValueError):
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(base,
                                                                              "a string")
        raise ConfigError(f"{name} must be {kind}, got {show(value)}", name) from None
    if base is float and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number; got {show(value)}", name)
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}; "
                          f"got {show(value)}",
                          name)
    low = f.metadata.get("min")
    if low is not None and value < low:
        raise ConfigError(f"{name} must be at least {low}; got {show(value)}", name)
    return value


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"'{where}' must be a mapping of keys to values, got {show(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            raise _unknown_key(where, str(key), cls)
        kwargs[key] = _coerce(f"{where}.{key}", value, fields[key], hints[key])
    return cls(**kwargs)


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``raw['a']['b'] = value`` for ``dotted='a.b'``, checking that the key exists."""
    parts = dotted.split(".")
    if parts[0] == "model" and len(parts) == 1:
        raw["model"] = value
        return
    if parts[0] == "method" and len(parts) == 2:  # checked against the model's options later
        _section(raw, "method")[parts[1]] = value
        return
    classes = _section_classes()
    if parts[0] not in classes:
        raise _unknown_key("", parts[0], Config)
    if len(parts) != 2:
        raise ConfigError(f"override '{dotted}' must name section.key, for example "
                          f"train.lr=1e-4; valid keys in '{parts[0]}': "
                          + ", ".join(valid_keys(classes[parts[0]])))
    if parts[1] not in valid_keys(classes[parts[0]]) and dotted not in LEGACY_KEYS:
        raise _unknown_key(parts[0], parts[1], classes[parts[0]])
    _section(raw, parts[0])[parts[1]] = value


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    section = raw.setdefault(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"'{name}' must be a mapping of keys to values", name)
    return section


MAX_CONFIG_BYTES = 1 << 20
MAX_NESTING = 16


class _ConfigLoader(yaml.SafeLoader):
    """Safe YAML without aliases (``*name``: a few lines can expand to gigabytes) and with
    at most ``MAX_NESTING`` levels of nesting."""

    depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a config file; write the "
                "value out", self.peek_event().start_mark)
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise yaml.composer.ComposerError(
                    None, None, f"values nest more than {MAX_NESTING} levels deep",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def read_yaml(text: str, where: str) -> Any:
    """``text`` parsed as config YAML (see :class:`_ConfigLoader`); ConfigError naming
    ``where`` when it cannot be."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{where} is {len(text)} bytes; a config is at most "
                          f"{MAX_CONFIG_BYTES}")
    try:
        return yaml.load(text, Loader=_ConfigLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"{where} is not valid YAML: {str(err)[:300]}") from None


_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother, _SHOW.maxlist, _SHOW.maxdict = 2, 40, 40, 4, 4


def show(value: Any) -> str:
    """A short repr of ``value`` for messages, whatever its size."""
    return _SHOW.repr(value)


def parse_override(text: str) -> tuple[str, Any]:
    """``'train.lr=1e-4'`` -> ``('train.lr', 1e-4)``; the value is read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override '{text}' must look like section.key=value, "
                          "for example train.iterations=1000")
    try:
        parsed = read_yaml(value, f"override {key.strip()}") if value.strip() else ""
    except ConfigError as err:
        if "not valid YAML" not in str(err):
            raise
        parsed = value
    return key.strip(), parsed


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build a checked :class:`Config` from a plain dict (the YAML file's contents)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("a config file must be a YAML mapping with sections such as "
                          "model, data, generator, discriminator, loss, train")
    model = raw.get("model", "pix2pix")
    model = _coerce("model", model, next(f for f in dataclasses.fields(Config)
                                          if f.name == "model"), str)
    method = METHODS[model]
    classes = _section_classes()
    for key in raw:
        if key not in ("model", "method") and key not in classes:
            raise _unknown_key("", str(key), Config)
    sections, moved = {}, {}
    for name, cls in classes.items():
        merged = dict(method.config_defaults.get(name, {}))
        given = raw.get(name) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"'{name}' must be a mapping of keys to values, not a "
                              f"{type(given).__name__}", name)
        for key, value in given.items():
            if f"{name}.{key}" in LEGACY_KEYS:
                moved[LEGACY_KEYS[f"{name}.{key}"]] = value
            else:
                merged[key] = value
        sections[name] = _build(cls, merged, name)
    config = Config(model=model, **sections, method=_method_options(method, moved, raw))
    if config.generator.depth is None:
        config.generator.depth = default_depth(config.generator.arch, config.data.crop_size)
    if "upsample" not in (raw.get("generator") or {}) and config.generator.arch not in (
            "unet", "resnet"):  # a method's default upsampling, for a decoder without one
        config.generator.upsample = "transpose"
    _check(config)
    method.check(config, set(moved) | set(raw.get("method") or {}))
    return config


def _method_options(method, moved: dict[str, Any], raw: dict[str, Any]):
    """The ``method`` section, built from the model's options class: the keys written in
    their old sections (those of this method; a method ignores another's), then the
    ``method`` section itself."""
    names = set(valid_keys(method.options))
    given = {k: v for k, v in moved.items() if k in names}
    section = raw.get("method") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"'method' must be a mapping of keys to values, got {show(section)}",
                          "method")
    given.update(section)
    return _build(method.options, given, "method")


def default_depth(arch: str, crop_size: int) -> int:
    """U-Net-256 has 8 downsamplings; the ResNet has 9 blocks at 256 px, 6 below; the
    local generator 4 blocks."""
    if arch == "unet":
        return 8
    if arch == "local":
        return 4
    return 9 if crop_size >= 256 else 6


def _check(config: Config) -> None:
    """Cross-field checks that would otherwise fail deep inside training."""
    d, g = config.data, config.generator
    if d.crop_size > d.load_size:
        raise ConfigError(f"data.crop_size ({d.crop_size}) must not exceed data.load_size "
                          f"({d.load_size})")
    if g.arch == "unet":
        stride = 2 ** g.depth
        if d.crop_size % stride:
            raise ConfigError(
                f"a U-Net with generator.depth={g.depth} halves the image {g.depth} times, so "
                f"data.crop_size must be a multiple of {stride}; got {d.crop_size}. Lower "
                f"generator.depth or change data.crop_size")
    elif d.crop_size % 4:
        raise ConfigError(f"the {g.arch} generator downsamples twice, so data.crop_size must "
                          f"be a multiple of 4; got {d.crop_size}")
    if g.upsample != "transpose" and g.arch not in ("unet", "resnet"):
        raise ConfigError(f"generator.upsample applies to the unet and resnet generators, not "
                          f"{g.arch}", "generator.upsample")
    if g.smooth and g.arch != "local":
        raise ConfigError(f"generator.smooth applies to the local generator, not {g.arch}",
                          "generator.smooth")
    if g.smooth > 16:
        raise ConfigError(f"generator.smooth must be 0 to 16 pixels; got {g.smooth}",
                          "generator.smooth")
    if g.tones and g.arch != "local":
        raise ConfigError(f"generator.tones applies to the local generator, not {g.arch}",
                          "generator.tones")
    if g.tones > 64:
        raise ConfigError(f"generator.tones must be 0 to 64 steps; got {g.tones}",
                          "generator.tones")
    if config.train.ema >= 1:
        raise ConfigError(f"train.ema must be below 1 (a decay; 0 turns it off); got "
                          f"{show(config.train.ema)}", "train.ema")
    for beta in ("beta1", "beta2"):
        if getattr(config.train, beta) >= 1:
            raise ConfigError(f"train.{beta} must be below 1 (an Adam moment decay); got "
                              f"{show(getattr(config.train, beta))}", f"train.{beta}")
    try:
        parse_policy(config.loss.diffaugment)
    except ValueError as err:
        raise ConfigError(f"loss.diffaugment: {err}") from None
    if config.train.decay_from is not None and config.train.decay_from > config.train.iterations:
        raise ConfigError(f"train.decay_from ({config.train.decay_from}) is after the last "
                          f"iteration ({config.train.iterations})")


def load_config(path: str | Path | None, overrides: list[str] = (), recorded: bool = False
                ) -> Config:
    """Read a YAML config, apply ``section.key=value`` overrides, check and return it.
    ``recorded``: the file is a run folder's ``config.yaml``, so options it lacks because it
    was written before they existed take the value its run used (:func:`fill_added_later`),
    and resuming rebuilds the same networks."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path} is {path.stat().st_size} bytes; a config is at most "
                              f"{MAX_CONFIG_BYTES}")
        raw = read_yaml(path.read_text(errors="replace"), str(path)) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} must hold a YAML mapping")
    if recorded:
        fill_added_later(raw)
    for text in overrides:
        key, value = parse_override(text)
        set_dotted(raw, key, value)
    config = config_from_dict(raw)
    if not config.train.out and path is not None:
        config.train.out = str(Path("runs") / path.stem)
    if not config.train.out:
        raise ConfigError("train.out (the run folder) must be set")
    if config.train.decay_from is None:
        config.train.decay_from = config.decay_from
    return config


# Options added after run folders were first written, at the value those runs trained with
# (a saved config.yaml without them predates them; today's default may differ).
ADDED_LATER = {"generator.upsample": "transpose"}


def fill_added_later(raw: dict[str, Any]) -> None:
    """Set, in a config a run recorded (a run folder's ``config.yaml``, a checkpoint's
    config), the options of :data:`ADDED_LATER` it lacks to the value its run used."""
    for key, value in ADDED_LATER.items():
        section, _, name = key.partition(".")
        if name not in (raw.get(section) or {}):
            set_dotted(raw, key, value)


def recorded_config(raw: dict[str, Any]) -> Config:
    """:func:`config_from_dict` for a config a run recorded (see :func:`fill_added_later`)."""
    raw = copy.deepcopy(raw)
    fill_added_later(raw)
    return config_from_dict(raw)


def changed_keys(old: Config, new: Config) -> list[str]:
    """Dotted keys whose values differ between two configs."""
    a, b = old.to_dict(), new.to_dict()
    out = []
    for section in dict.fromkeys([*a, *b]):  # a method's section has its own keys
        x, y = a.get(section, _ABSENT), b.get(section, _ABSENT)
        if isinstance(x, dict) and isinstance(y, dict):
            out += [f"{section}.{k}" for k in dict.fromkeys([*x, *y])
                    if x.get(k, _ABSENT) != y.get(k, _ABSENT)]
        elif x != y:
            out.append(section)
    return out


_ABSENT = object()  # a key one of two compared configs does not have
