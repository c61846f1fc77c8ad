"""translate eval: PSNR/SSIM against direct computations, FID/KID with a stand-in feature
extractor, test-split discovery per layout, the CLI, and evaluation during training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_cli, tiny_config
from torch import nn

from translate.infer.evaluate import (EvalError, distribution_scores, evaluate, psnr, ssim,
                                scoring_cases)
from translate.infer.engine import Engine
from translate.data.synth import render_dataset
from translate.train.loop import train


def direct_ssim(x: np.ndarray, y: np.ndarray, size: int = 11, sigma: float = 1.5) -> float:
    """SSIM written out window by window, as in Wang et al. 2004."""
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x, y = x.astype(np.float64), y.astype(np.float64)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    values = []
    for c in range(x.shape[2]):
        for i in range(x.shape[0] - size + 1):
            for j in range(x.shape[1] - size + 1):
                px, py = x[i:i + size, j:j + size, c], y[i:i + size, j:j + size, c]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
                cov = (w * (px - mx) * (py - my)).sum()
                values.append((2 * mx * my + c1) * (2 * cov + c2)
                              / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_psnr_and_ssim_match_direct_computation():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    noisy = np.clip(x + rng.normal(0, 20, x.shape), 0, 255).astype(np.uint8)
    assert ssim(x, noisy) == pytest.approx(direct_ssim(x, noisy), abs=1e-9)
    assert ssim(x[..., 0], noisy[..., 0]) == pytest.approx(direct_ssim(x[..., 0],
                                                                       noisy[..., 0]), abs=1e-9)
    assert ssim(x, x) == pytest.approx(1.0)
    assert ssim(x, noisy) == pytest.approx(ssim(noisy, x))
    shifted = (x.astype(np.int16) + 5).clip(0, 255).astype(np.uint8)
    mse = np.mean((shifted.astype(float) - x) ** 2)
    assert psnr(x, shifted) == pytest.approx(10 * np.log10(255 ** 2 / mse))
    assert psnr(x, x) == float("inf")


def test_ssim_and_psnr_in_strips_are_the_same_figures(monkeypatch):
    """Strips of a few rows (so that every window crosses strip boundaries) give what one
    pass over the whole image gives, and the direct computation."""
    import translate.infer.evaluate as evaluate_module

    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (40, 29, 3), dtype=np.uint8)
    noisy = np.clip(x + rng.normal(0, 30, x.shape), 0, 255).astype(np.uint8)
    whole = ssim(x, noisy), psnr(x, noisy)
    monkeypatch.setattr(evaluate_module, "STRIP_PIXELS", 29 * 3)  # 3 rows of windows
    assert ssim(x, noisy) == pytest.approx(whole[0], abs=1e-12)
    assert ssim(x, noisy) == pytest.approx(direct_ssim(x, noisy), abs=1e-9)
    assert psnr(x, noisy) == pytest.approx(whole[1], abs=1e-12)


def test_ssim_of_a_large_pair_takes_bounded_memory():
    """A 4-megapixel pair: the whole-image float64 computation took about 2.9 KB per pixel
    (12.6 GB here); in strips the process grows by a few hundred MB at any size."""
    import subprocess
    import sys

    code = ("import resource, numpy as np\n"
            "from translate.infer.evaluate import ssim, psnr\n"
            "x = np.random.default_rng(0).integers(0, 256, (2000, 2000, 3), np.uint8)\n"
            "y = x[::-1].copy()\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "value = ssim(x, y), psnr(x, y)\n"
            "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
            "print(grown // 1024, value)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    grown_mb = int(proc.stdout.split()[0])
    assert grown_mb < 600, proc.stdout  # measured: 295 MB at 4 MP, 281 MB at 12 MP


class StandIn(nn.Module):
    """A tiny fixed feature extractor: uint8 (N, 3, H, W) -> (N, 12)."""

    def __init__(self):
        super().__init__()
        self.proj = torch.randn(3 * 4 * 4, 12, generator=torch.Generator().manual_seed(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(x.float() / 255, 4).flatten(1)
        return pooled @ self.proj


def direct_fid(f1: np.ndarray, f2: np.ndarray) -> float:
    from scipy import linalg
    m1, m2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_and_kid_with_a_stand_in_extractor():
    pytest.importorskip("torchmetrics")
    rng = np.random.default_rng(1)
    real = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(30)]
    other = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(30)]
    fake = [(im * 0.4).astype(np.uint8) for im in real]  # much darker
    net = StandIn()
    assert abs(distribution_scores(real, real, net, resize=40)["fid"]) < 1e-3
    same = distribution_scores(real, other, net, resize=40)  # one distribution
    scores = distribution_scores(real, fake, net, resize=40)
    feats = [net(torch.stack([torch.from_numpy(i).permute(2, 0, 1) for i in s])).double()
             .numpy() for s in (real, fake)]
    assert scores["fid"] == pytest.approx(direct_fid(*feats), rel=1e-3)
    assert scores["fid"] > 10 * same["fid"] and scores["kid"] > 10 * abs(same["kid"])


class MappingEngine(Engine):
    """The true 'shapes' mapping (R, G, B) -> (255 - R, B, G), in [-1, 1]: (-R, B, G)."""
    stride = 1
    info = {"direction": "a2b", "kwargs": {}}

    def run(self, x):
        return torch.stack([-x[:, 0], x[:, 2], x[:, 1]], 1)


class IdentityEngine(Engine):
    stride = 1
    info = {"direction": "a2b", "kwargs": {}}

    def run(self, x):
        return x


@pytest.mark.parametrize("layout", ["paired", "aligned", "unpaired"])
def test_evaluate_finds_counterparts_in_every_layout(tmp_path, layout):
    root = render_dataset(tmp_path / layout, size=24, train=2, test=5, layout=layout)
    cases, targets = scoring_cases(root, "a2b")
    assert len(cases) == 5 and len(targets) == 5 and all(c.truth for c in cases)
    perfect = evaluate(MappingEngine(), root)
    assert perfect["psnr"] == 100.0 and perfect["ssim"] == pytest.approx(1.0)
    same = evaluate(IdentityEngine(), root)
    assert same["psnr"] == pytest.approx(same["identity_psnr"])
    assert same["identity_psnr"] < 15 and perfect["identity_psnr"] == same["identity_psnr"]
    assert any("FID/KID not computed" in n for n in same["notes"])


def test_evaluate_without_test_split_is_a_clear_error(tmp_path):
    root = render_dataset(tmp_path / "d", size=24, train=2, test=0)
    with pytest.raises(EvalError, match="no test split"):
        evaluate(IdentityEngine(), root)


def test_eval_cli_on_a_trained_model(tmp_path, shapes32):
    out = tmp_path / "run"
    train(tiny_config(shapes32, out), progress=False)
    result = run_cli("eval", "--checkpoint", str(out), "--data", str(shapes32), "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["images"] == 8 and scores["direction"] == "a2b"
    assert {"psnr", "ssim", "identity_psnr", "identity_ssim"} <= scores.keys()
    text = run_cli("eval", "--checkpoint", str(out / "generator_a2b.safetensors"),
                   "--data", str(shapes32), "--limit", "3")
    assert text.returncode == 0 and "identity baseline" in text.stdout
    assert "3 test images" in text.stdout and "FID/KID not computed" in text.stdout
    missing = run_cli("eval", "--checkpoint", str(out), "--data", str(shapes32),
                      "--inception-weights", str(tmp_path / "nope.pth"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_eval_during_training_keeps_the_best_and_changes_nothing(tmp_path, shapes32):
    plain = tmp_path / "plain"
    train(tiny_config(shapes32, plain), progress=False)
    scored = tmp_path / "scored"
    train(tiny_config(shapes32, scored, train={"eval_every": 4, "eval_images": 3}),
          progress=False)
    rows = [json.loads(line) for line in (scored / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval_psnr" in r]
    assert [r["step"] for r in evals] == [4, 8, 12]
    assert all(r["eval_images"] == 3 and "eval_identity_psnr" in r for r in evals)
    losses = [r for r in rows if "g_total" in r]
    plain_rows = [json.loads(line) for line in (plain / "metrics.jsonl").read_text()
                  .splitlines()]
    assert [r["g_total"] for r in losses] == [r["g_total"] for r in plain_rows]
    best = torch.load(scored / "checkpoints" / "best.pt", weights_only=True)
    top = max(evals, key=lambda r: r["eval_psnr"])
    assert best["step"] == top["step"] and best["best"]["value"] == top["eval_psnr"]


def test_evaluate_a_dataset_that_has_only_a_test_split(tmp_path):
    root = render_dataset(tmp_path / "t", size=24, train=0, test=3)
    assert not (root / "train").exists()
    assert evaluate(MappingEngine(), root)["psnr"] == 100.0


def test_only_the_evaluating_process_opens_the_inception_weights(tmp_path, shapes32):
    """Under torchrun only process 0 evaluates, so only it loads Inception: with a damaged
    file in the hub cache, process 0 fails to load it and the others never open it."""
    from translate.infer.evaluate import INCEPTION_FILE
    from translate.train.periodic_eval import PeriodicEval

    hub = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
        (tmp_path / "hub" / "checkpoints" / INCEPTION_FILE).write_bytes(b"not weights")
        config = tiny_config(shapes32, tmp_path / "run", train={"eval_every": 4})
        other = PeriodicEval(config, torch.device("cpu"), "instance", main=False)
        assert other.features is None and other.due(4) and not other.due(3)
        with pytest.raises(EvalError, match="not a readable PyTorch file"):
            PeriodicEval(config, torch.device("cpu"), "instance", main=True)
    finally:
        torch.hub.set_dir(hub)



class RunsCode:
    """Unpickling this object would create ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_inception_weights_are_never_unpickled(tmp_path):
    """torch-fidelity reads weight files with weights_only=False; a user's file is checked
    with weights_only=True first, so a file carrying code is refused and the code never runs;
    tensors that are not Inception's are refused with the reason."""
    from translate.infer.evaluate import InceptionFeatures

    marker = tmp_path / "marker"
    torch.save({"fc.weight": torch.zeros(1), "x": RunsCode(marker)}, tmp_path / "code.pth")
    with pytest.raises(EvalError, match="refused: it holds pickled Python objects"):
        InceptionFeatures(tmp_path / "code.pth")
    assert not marker.exists()
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    with pytest.raises(EvalError, match="not torch-fidelity's Inception-v3 weights"):
        InceptionFeatures(tmp_path / "other.pth")


def test_inception_weights_of_the_right_layout_load(tmp_path, monkeypatch):
    """A file holding every tensor of torch-fidelity's Inception-v3 (random values here: the
    released file cannot be downloaded in the tests) loads and gives (N, 2048) features."""
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    from translate.infer.evaluate import InceptionFeatures

    with monkeypatch.context() as patch:  # build the network once without any weights
        patch.setattr(fidelity, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(nn.Module, "load_state_dict", lambda self, *a, **k: None)
        layout = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(layout.state_dict(), tmp_path / "inception.pth")
    features = InceptionFeatures(tmp_path / "inception.pth")
    out = features(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8))
    assert tuple(out.shape) == (2, 2048)
