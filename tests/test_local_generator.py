"""The local generator (translate/networks/local.py): the identity when untrained, every
output pixel a function of a bounded window, and therefore tiles equal to the whole image
and the same behaviour at any size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from translate.formats.checkpoint import export_generator
from translate.train.config import ConfigError, load_config
from translate.infer.engine import Translator
from translate.networks import build_generator

KWARGS = {"in_channels": 3, "out_channels": 3, "ngf": 8, "depth": 2, "norm": "none",
          "dropout": False}


def _trained_looking(seed: int = 0, **extra) -> torch.nn.Module:
    """A local generator with random (non-identity) weights."""
    torch.manual_seed(seed)
    net = build_generator("local", dict(KWARGS, **extra))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return net.eval()


def test_untrained_generator_returns_its_input():
    net = build_generator("local", KWARGS)
    x = torch.rand(2, 3, 40, 52) * 2 - 1
    assert torch.equal(net(x), x)
    assert sum(p.numel() for p in build_generator(
        "local", dict(KWARGS, ngf=16, depth=4)).parameters()) < 400_000


@pytest.mark.parametrize("smooth", [0, 3])
def test_output_depends_only_on_a_bounded_window(smooth):
    net = _trained_looking(smooth=smooth)
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    changed = x.clone()
    changed[..., 200:, 200:] = -changed[..., 200:, 200:]
    with torch.no_grad():
        diff = (net(x) - net(changed)).abs().amax(dim=1)[0]
    assert diff[200:, 200:].max() > 0.01  # the network does look at its input
    rows, cols = torch.nonzero(diff > 0, as_tuple=True)
    reach = 64 + 2 * smooth  # the output filter's two rounds of window means
    assert rows.min() >= 200 - reach and cols.min() >= 200 - reach  # nothing further moved
    assert net.receptive_margin(**dict(KWARGS, smooth=smooth)) >= 200 - rows.min()


@pytest.mark.parametrize("smooth, tones", [(0, 0), (2, 0), (2, 6)])
def test_tiles_equal_the_whole_image(tmp_path, smooth, tones):
    kwargs = dict(KWARGS, **{k: v for k, v in (("smooth", smooth), ("tones", tones)) if v})
    path = export_generator(_trained_looking(1, **kwargs), tmp_path / "g.safetensors",
                            arch="local", kwargs=kwargs, direction="a2b",
                            norm_stats="running", method="pix2pix", step=1)
    engine = Translator.from_checkpoint(path, device="cpu")
    rgb = np.random.default_rng(0).integers(0, 256, (300, 420, 3), dtype=np.uint8)
    assert engine.tile_margin >= 30  # measured reach of depth 2: 30 px
    for shape in ((300, 420, 3), (301, 419, 3)):  # odd sizes: padded to the stride grid
        rgb = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        whole = engine.translate_array(rgb, tile=1024).astype(int)
        for tile in (128, 256):
            tiled = engine.translate_array(rgb, tile=tile, overlap=16).astype(int)
            assert tiled.shape == shape
            diff = np.abs(whole - tiled)  # float summation order only
            assert diff.max() <= 1 and diff.mean() < 0.01, (tile, diff.max(), diff.mean())


@pytest.mark.parametrize("size", [(8, 8), (12, 20), (36, 52), (100, 64)])
@pytest.mark.parametrize("extra", [{}, {"smooth": 2, "tones": 6}])
def test_upsampling_by_phases_equals_the_plain_upsampling(size, extra):
    """Outside training each upsampling runs as one convolution per output phase at the low
    resolution (local._up_conv); training runs the plain bilinear map and convolution. The
    forward values are the same in both modes (the straight-through terms add zero), so the
    two paths must agree to fp32 rounding, borders and corners included."""
    net = _trained_looking(**extra)
    x = torch.rand(2, 3, *size) * 2 - 1
    with torch.no_grad():
        phases = net.eval()(x)
        plain = net.train()(x)
    assert (phases - plain).abs().max() < 1e-4   # measured up to 8e-6 (the tone stage)


def test_a_trace_sees_the_plain_upsampling():
    """An ONNX export traces the network: it gets the plain operations (engines such as
    OpenVINO fuse those better than the phases' pixel shuffle and ring writes)."""
    net = _trained_looking()
    with torch.no_grad():
        graph = str(torch.jit.trace(net, torch.rand(1, 3, 32, 32)).inlined_graph)
    assert "upsample_bilinear2d" in graph and "pixel_shuffle" not in graph


def test_upsampling_by_phases_in_bf16_stays_within_bf16_rounding(monkeypatch):
    """In bf16 the phase kernels are rounded after they are composed, the plain path rounds
    the upsampled map: both stay as close to fp32 as each other."""
    import translate.networks.local as local

    net = _trained_looking(ngf=16)
    x = (torch.rand(1, 3, 64, 96) * 2 - 1).to(memory_format=torch.channels_last)
    results = []
    for phases in (True, False):
        monkeypatch.setattr(local, "PHASE_UPSAMPLE", phases)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            results.append(net(x).float())
    with torch.no_grad():
        full = net(x)
    drift = (results[1] - full).abs().max()  # the plain path's bf16 rounding
    assert (results[0] - full).abs().max() <= 1.5 * drift + 0.01


def test_the_output_filter_flattens_weak_variation_and_keeps_edges():
    """generator.smooth: an untrained generator returns its input through the self-guided
    filter: faint texture (about 8 levels) is averaged away, a strong step (half the range)
    stays as sharp as it was; in bf16 autocast the filter runs in fp32 all the same."""
    net = build_generator("local", dict(KWARGS, smooth=2))
    texture = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.06
    x = (texture + torch.zeros(1, 3, 64, 64)).clamp(-1, 1)
    x[..., 32:] += 0.5
    with torch.no_grad():
        y = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y_bf16 = net(x)
    assert y[..., 4:28].std() < 0.4 * x[..., 4:28].std()  # flat where it was faint
    step = y[..., 36:60].mean() - y[..., 4:28].mean()
    assert step > 0.45  # the strong edge keeps its height ...
    assert (y[..., 33] - y[..., 30]).mean() > 0.4  # ... and its sharpness (3 px apart)
    assert (y_bf16.float() - y).abs().max() < 0.05
    with pytest.raises(ValueError, match="0 to 16"):
        build_generator("local", dict(KWARGS, smooth=17))
    with pytest.raises(ConfigError, match="applies to the local generator"):
        load_config(None, ["generator.smooth=2", "train.out=x"])
    config = load_config(None, ["generator.arch=local", "generator.norm=none",
                                "generator.smooth=2", "train.out=x"])
    assert config.generator.smooth == 2


def _ramp(width: int = 96) -> torch.Tensor:
    """(1, 3, 16, width): a grey ramp from black to white, left to right, in [-1, 1]."""
    return torch.linspace(-1, 1, width).view(1, 1, 1, width).expand(1, 3, 16, width).clone()


def _lightness(y: torch.Tensor) -> torch.Tensor:
    """CIELAB lightness in [0, 1] of (N, 3, H, W) in [-1, 1]."""
    from kornia.color import rgb_to_lab
    return rgb_to_lab((y.float() + 1) / 2)[:, 0] / 100


def _toned(amount_logit: float) -> torch.nn.Module:
    """An untrained generator with the tone stage (6 steps) applied by ``amount_logit``."""
    net = build_generator("local", dict(KWARGS, tones=6)).eval()
    with torch.no_grad():
        net.tail.bias[-1] = amount_logit
    return net


def test_the_tone_stage_draws_shading_to_steps_where_the_network_asks():
    """generator.tones: where the network's fourth channel says so, a smooth ramp comes out
    as 6 steps (nearly flat within each, crisp between); where it says not, the ramp stays
    a ramp; colour is kept; in bf16 autocast the stage runs in fp32 all the same."""
    x = _ramp()
    with torch.no_grad():
        stepped, kept = _toned(8.0)(x), _toned(-8.0)(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            stepped_bf16 = _toned(8.0)(x)
    light = _lightness(stepped)[0, 8]
    levels = torch.arange(7) / 6
    nearest = (light.view(-1, 1) - levels.view(1, -1)).abs().min(1).values
    assert (nearest < 0.02).float().mean() > 0.7   # most pixels sit on one of the 7 tones
    slope = light.diff().abs()
    assert (slope < 0.25 * (1 / 95)).float().mean() > 0.6  # flat within steps ...
    assert slope.max() > 2 / 95                             # ... and steep between them
    assert (kept - x).abs().max() < 0.02                    # off: the ramp as it was
    assert (stepped[:, 0] - stepped[:, 2]).abs().max() < 0.02  # grey stays grey
    assert (stepped_bf16.float() - stepped).abs().max() < 0.02
    with pytest.raises(ValueError, match="0 to 64"):
        build_generator("local", dict(KWARGS, tones=65))
    with pytest.raises(ValueError, match="RGB output"):
        build_generator("local", dict(KWARGS, out_channels=1, tones=6))
    with pytest.raises(ConfigError, match="applies to the local generator"):
        load_config(None, ["generator.tones=6", "train.out=x"])
    config = load_config(None, ["generator.arch=local", "generator.norm=none",
                                "generator.tones=6", "train.out=x"])
    assert config.generator.tones == 6


def test_the_tone_stage_passes_the_gradient_in_training():
    """Within a step the output hardly moves with its input (slope TONE_KEEP, 0.1), so in
    training the stage passes the gradient as if the step were not there: a pixel on the
    wrong step can learn to leave it. In use the forward pass is the same."""
    net = _toned(8.0)
    grads = {}
    for mode in ("train", "eval"):
        x = _ramp().requires_grad_(True)
        y = getattr(net, mode)()(x)
        y.sum().backward()
        grads[mode] = x.grad.sum(1)[0, 8]
    with torch.no_grad():
        assert torch.equal(net.train()(_ramp()), net.eval()(_ramp()))
    inside = grads["eval"].abs() < 0.5   # pixels within a step, where the output is flat
    assert inside.float().mean() > 0.5
    assert grads["train"][inside].mean() > 5 * grads["eval"][inside].mean()


def test_a_generator_pushed_past_the_range_still_learns():
    """Every output past +1: the output is clamped to 1 (in training and in use), but in
    training the gradient still reaches the weights (straight through the clamp), so the
    L1 term can pull the generator back; a plain clamp left such a run dead for good."""
    net = build_generator("local", KWARGS)
    with torch.no_grad():
        net.tail.bias.fill_(5.0)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    y = net.train()(x)
    assert torch.equal(y, torch.ones_like(x))
    (y - x).abs().mean().backward()
    assert net.tail.bias.grad.abs().sum() > 0.5
    assert torch.equal(net.eval()(x), torch.ones_like(x))


def test_norm_and_dropout_are_refused():
    with pytest.raises(ValueError, match="no normalisation"):
        build_generator("local", dict(KWARGS, norm="instance"))
    with pytest.raises(ConfigError, match="multiple of 4"):
        load_config(None, ["generator.arch=local", "generator.norm=none", "train.out=x",
                           "data.crop_size=30", "data.load_size=30"])
    config = load_config(None, ["generator.arch=local", "generator.norm=none", "train.out=x"])
    assert config.generator.depth == 4


def test_loading_a_shipped_model_does_not_import_the_compiler():
    """Opening a model checks its description by building the network on the meta device;
    initialising those weights went through torch's reference ops, which import
    torch._dynamo: about 1 s added to every command that opens a model (convert, the demo).
    Loading a shipped model leaves it unimported."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    code = ("import sys\n"
            "from translate.infer.engine import Translator\n"
            "Translator.from_checkpoint('models/real2anime.safetensors', device='cpu')\n"
            "print('torch._dynamo' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", done.stdout
