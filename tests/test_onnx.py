"""ONNX export: dynamic batch and size, parity with PyTorch, metadata, the onnxruntime engine
and the CLI path."""

import sys

import numpy as np
import pytest
import torch

from translate.formats.checkpoint import export_generator
from translate.infer.engine import Translator, load_any
from translate.networks import build_generator
from translate.infer.onnx_engine import OnnxError, OnnxTranslator
from translate.infer.onnx_export import ExportError, check_parity, export_onnx

from conftest import run_cli

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

UNET = {"in_channels": 3, "out_channels": 3, "ngf": 4, "depth": 5, "norm": "batch",
        "dropout": True}
RESNET = {"in_channels": 3, "out_channels": 3, "ngf": 4, "depth": 2, "norm": "instance",
          "dropout": False}
LOCAL = {"in_channels": 3, "out_channels": 3, "ngf": 4, "depth": 2, "norm": "none",
         "dropout": False}
CASES = {"unet-image": ("unet", UNET, "image"), "unet-running": ("unet", UNET, "running"),
         "resnet": ("resnet", RESNET, "running"), "local": ("local", LOCAL, "running"),
         "local-stages": ("local", dict(LOCAL, smooth=2, tones=6), "running")}


def exported(tmp_path, case: str, direction: str = "b2a"):
    """A tiny generator as a safetensors export, reloaded by load_any: (path, net, info)."""
    arch, kwargs, norm_stats = CASES[case]
    torch.manual_seed(0)
    net = build_generator(arch, kwargs)
    for m in net.modules():  # running statistics that differ from the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    if arch == "local":  # an untrained local generator is the identity: move it away
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    path = export_generator(net, tmp_path / f"{case}.safetensors", arch=arch, kwargs=kwargs,
                            direction=direction, norm_stats=norm_stats, method="pix2pix",
                            step=5, config={"model": "pix2pix"}, card={"task": "test"})
    return (path, *load_any(path))


@pytest.mark.parametrize("case", list(CASES))
def test_export_has_dynamic_axes_and_matches_torch(tmp_path, case):
    _, net, info = exported(tmp_path, case)
    path = export_onnx(net, info, tmp_path / "g.onnx")
    graph = onnx.load(path).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert graph.input[0].name == "image" and graph.output[0].name == "translated"
    assert isinstance(dims[0], str) and dims[1] == 3 and all(isinstance(d, str)
                                                             for d in dims[2:])
    # traced at (2, 64, 96): other sizes, batch 1 and 3
    diff = check_parity(net, path, sizes=((1, 32, 64), (3, 96, 32), (1, 128, 160)))
    assert diff < 1e-4


def test_metadata_round_trip(tmp_path):
    _, net, info = exported(tmp_path, "resnet", direction="b2a")
    engine = OnnxTranslator.from_file(export_onnx(net, info, tmp_path / "g.onnx"),
                                      threads=1)
    assert engine.direction == "b2a" and engine.stride == 4 and engine.in_channels == 3
    assert engine.info["kwargs"] == RESNET and engine.info["arch"] == "resnet"
    assert engine.info["card"] == {"task": "test"}
    assert engine.info["config"] == {"model": "pix2pix"}
    assert engine.info["format"] == "translate-generator-onnx"
    assert engine.norm_stats == "running" and engine.device == torch.device("cpu")
    assert engine.per_image_norm and engine.tile_size(4000, 4000) == 0
    assert "resnet" in engine.describe() and "ONNX" in engine.describe()


@pytest.mark.parametrize("case", ["unet-image", "resnet", "local", "local-stages"])
def test_engine_matches_translator_at_odd_sizes(tmp_path, case):
    path, net, info = exported(tmp_path, case)
    engine = OnnxTranslator.from_file(export_onnx(net, info, tmp_path / "g.onnx"))
    reference = Translator.from_checkpoint(path, device="cpu")
    x = torch.rand(2, 3, 37, 53) * 2 - 1
    y = engine(x)
    assert y.shape == (2, 3, 37, 53) and y.dtype == torch.float32
    assert (y - reference(x)).abs().max().item() < 1e-3
    rgb = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    out = engine.translate_array(rgb)
    assert out.shape == (37, 53, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - reference.translate_array(rgb).astype(int)).max() <= 1


def test_parity_failure_is_an_error(tmp_path):
    _, net, info = exported(tmp_path, "unet-running")
    path = export_onnx(net, info, tmp_path / "g.onnx")
    with torch.no_grad():
        net.model.model[0].weight.add_(0.5)  # the PyTorch net no longer matches the file
    with pytest.raises(ExportError, match="parity failed"):
        check_parity(net, path)


def test_cli_exports_onnx_and_reports_parity(tmp_path):
    path, _, _ = exported(tmp_path, "unet-image", direction="a2b")
    out = tmp_path / "models" / "x.onnx"
    proc = run_cli("export", "--checkpoint", str(path), "--format", "onnx", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "onnx parity (a2b): max |onnx - torch| = " in proc.stderr
    assert str(out) in proc.stdout
    assert OnnxTranslator.from_file(out).norm_stats == "image"
    proc = run_cli("export", "--checkpoint", str(path), "--format", "onnx", "--dtype", "fp16")
    assert proc.returncode == 2 and "error: --dtype" in proc.stderr


def test_foreign_onnx_is_refused(tmp_path):
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "other.onnx")
    with pytest.raises(OnnxError, match="not a translate generator"):
        OnnxTranslator.from_file(tmp_path / "other.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(OnnxError, match="not a readable ONNX model"):
        OnnxTranslator.from_file(tmp_path / "junk.onnx")
    assert isinstance(OnnxError("x"), ValueError)


def test_missing_onnxruntime_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(OnnxError, match=r"pip install 'translate\[onnx\]'"):
        OnnxTranslator.from_file(tmp_path / "g.onnx")


def test_falls_back_to_the_dynamo_exporter(tmp_path, monkeypatch):
    """Where the TorchScript exporter is missing or fails, torch.export's is used."""
    pytest.importorskip("onnxscript")
    from translate.infer import onnx_export

    def broken(*args):
        raise RuntimeError("no TorchScript exporter here")

    _, net, info = exported(tmp_path, "resnet")
    monkeypatch.setitem(onnx_export._EXPORT, "torchscript", broken)
    path = export_onnx(net, info, tmp_path / "g.onnx")
    assert OnnxTranslator.from_file(path).info["exporter"] == "dynamo"
    assert check_parity(net, path, sizes=((1, 32, 64), (3, 96, 32))) < 1e-4
    monkeypatch.setitem(onnx_export._EXPORT, "dynamo", broken)
    with pytest.raises(ExportError, match="torchscript exporter: RuntimeError.*dynamo"):
        export_onnx(net, info, tmp_path / "h.onnx")
    assert not (tmp_path / "h.onnx").exists()


def test_cli_convert_with_onnxruntime(tmp_path):
    """The onnxruntime engine converts a folder like the torch engine, tiny images too."""
    from PIL import Image
    path, _, _ = exported(tmp_path, "resnet", direction="a2b")
    run_cli("export", "--checkpoint", str(path), "--format", "onnx", "--out",
            str(tmp_path / "g.onnx"), check=True)
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a.png": (1, 1), "b.png": (37, 53), "c.jpg": (40, 40)}.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(src / name)
    # the ONNX graph runs in fp32, so torch is compared in fp32 (its default, auto, runs
    # bf16 on CPUs with bf16 units, a few levels away: tests/test_cpu_bf16.py)
    for engine, checkpoint in (("onnxruntime", tmp_path / "g.onnx"), ("torch", path)):
        proc = run_cli("convert", "--engine", engine, "--checkpoint", str(checkpoint),
                       "--input", str(src), "--output", str(tmp_path / engine), "--quiet",
                       "--format", "png", "--precision", "fp32", check=True)
        assert "converted 3 image(s)" in proc.stderr
    for name in ("a.png", "b.png", "c.png"):
        with Image.open(tmp_path / "onnxruntime" / name) as x, \
                Image.open(tmp_path / "torch" / name) as y:
            assert x.size == y.size
            if name != "a.png":  # a 1x1 image pads to a flat one, where instance norm
                # divides rounding noise by sqrt(eps): any two runtimes differ there
                assert np.abs(np.asarray(x, int) - np.asarray(y, int)).max() <= 1
