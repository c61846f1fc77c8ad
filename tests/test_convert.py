"""Batch conversion: any size and mode, alpha, batching, tiling, skip-existing, globs."""

import numpy as np
import pytest
import torch
from PIL import Image

from translate.formats.checkpoint import export_generator
from translate.infer.convert import HostBuffers, Options, UsageError, convert, plan
from translate.infer.engine import Translator
from translate.networks import build_generator
from translate.infer.tiling import balanced_tile, ramp, tile_starts

from conftest import run_cli

RESNET = {"in_channels": 3, "out_channels": 3, "ngf": 8, "depth": 3, "norm": "instance",
          "dropout": False}
UNET = {"in_channels": 3, "out_channels": 3, "ngf": 4, "depth": 5, "norm": "batch",
        "dropout": True}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    paths = {}
    for name, arch, kw, stats in (("resnet", "resnet", RESNET, "running"),
                                  ("unet", "unet", UNET, "image")):
        net = build_generator(arch, kw)
        paths[name] = export_generator(net, folder / f"{name}.safetensors", arch=arch,
                                       kwargs=kw, direction="a2b", norm_stats=stats,
                                       method="cyclegan", step=0)
    return paths


def noise(h, w, seed=0, smooth=True):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    if smooth:
        import cv2
        img = cv2.GaussianBlur(img, (0, 0), 2)
    return img


@pytest.mark.parametrize("name", ["resnet", "unet"])
def test_sizes_are_kept(models, tmp_path, name):
    src = tmp_path / "in"
    src.mkdir()
    sizes = [(1, 1), (7, 13), (1023, 769), (2, 300)]
    for h, w in sizes:
        Image.fromarray(noise(h, w, smooth=False)).save(src / f"{h}x{w}.png")
    t = Translator.from_checkpoint(models[name], device="cpu")
    report = convert(t, src, tmp_path / "out", Options(workers=0), progress=False)
    assert len(report.written) == len(sizes) and not report.failed
    for h, w in sizes:
        with Image.open(tmp_path / "out" / f"{h}x{w}.png") as img:
            assert img.size == (w, h)


def test_orientation_is_applied(models, tmp_path):
    img = Image.fromarray(noise(10, 30))
    exif = img.getexif()
    exif[0x0112] = 8  # rotated 90 degrees
    (tmp_path / "in").mkdir()
    img.save(tmp_path / "in" / "r.jpg", exif=exif)
    t = Translator.from_checkpoint(models["resnet"], device="cpu")
    convert(t, tmp_path / "in", tmp_path / "out", Options(workers=0), progress=False)
    with Image.open(tmp_path / "out" / "r.jpg") as out:
        assert out.size == (10, 30)  # displayed upright: 10 wide, 30 tall
        assert 0x0112 not in out.getexif()


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "I;16", "CMYK", "1"])
def test_every_mode_converts(models, tmp_path, mode):
    base = Image.fromarray(noise(20, 24))
    if mode == "I;16":
        img = Image.fromarray((np.asarray(base.convert("L"), np.uint16) * 257))
    else:
        img = base.convert(mode)
    ext = ".jpg" if mode == "CMYK" else ".png"
    (tmp_path / "in").mkdir()
    img.save(tmp_path / "in" / f"x{ext}")
    t = Translator.from_checkpoint(models["resnet"], device="cpu")
    report = convert(t, tmp_path / "in", tmp_path / "out", Options(workers=0), progress=False)
    assert not report.failed
    with Image.open(report.written[0]) as out:
        assert out.size == (24, 20)
        assert out.mode == ("RGBA" if mode in ("LA", "RGBA") else "RGB")


def test_alpha_is_carried_over_and_dropped_for_jpeg(models, tmp_path):
    rgba = np.dstack([noise(16, 16), np.tile(np.arange(16, dtype=np.uint8) * 16, (16, 1))])
    (tmp_path / "in").mkdir()
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in" / "a.png")
    t = Translator.from_checkpoint(models["resnet"], device="cpu")
    convert(t, tmp_path / "in", tmp_path / "png", Options(workers=0), progress=False)
    with Image.open(tmp_path / "png" / "a.png") as out:
        assert out.mode == "RGBA"
        assert np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])
    report = convert(t, tmp_path / "in", tmp_path / "jpg", Options(workers=0, format="jpg"),
                     progress=False)
    assert report.alpha_dropped == [tmp_path / "jpg" / "a.jpg"]
    with Image.open(tmp_path / "jpg" / "a.jpg") as out:
        assert out.mode == "RGB"


def test_jpeg_quality_is_high(models, tmp_path):
    (tmp_path / "in").mkdir()
    Image.fromarray(noise(64, 64)).save(tmp_path / "in" / "x.png")
    t = Translator.from_checkpoint(models["resnet"], device="cpu")
    convert(t, tmp_path / "in", tmp_path / "out", Options(workers=0, format="jpg"),
            progress=False)
    exact = t.translate_array(noise(64, 64))
    Image.fromarray(exact).save(tmp_path / "default.jpg")  # Pillow's default quality, 75
    with Image.open(tmp_path / "out" / "x.jpg") as ours, \
            Image.open(tmp_path / "default.jpg") as default:
        ours_err = np.abs(np.asarray(ours, float) - exact).mean()
        default_err = np.abs(np.asarray(default, float) - exact).mean()
    assert ours_err < 0.6 * default_err


@pytest.mark.parametrize("name", ["resnet", "unet"])
def test_batching_does_not_change_results(models, tmp_path, name):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        Image.fromarray(noise(32, 40, seed=i)).save(src / f"{i}.png")
    t = Translator.from_checkpoint(models[name], device="cpu")
    one = convert(t, src, tmp_path / "b1", Options(batch_size=1, workers=0), progress=False)
    four = convert(t, src, tmp_path / "b4", Options(batch_size=4, workers=2), progress=False)
    for a, b in zip(sorted(one.written), sorted(four.written)):
        with Image.open(a) as x, Image.open(b) as y:
            diff = np.abs(np.asarray(x, int) - np.asarray(y, int))
            assert diff.max() <= 1, a.name  # float summation order only


@pytest.mark.parametrize("channels", [3, 1])
def test_batches_travel_as_uint8_and_give_what_one_image_gives(tmp_path, channels):
    """Batches go to the device as uint8 from reused buffers and become floats there: each
    output is the single-image float path's (translate_array), for an RGB generator and
    for a grayscale one (which gets the luma), over batches of two sizes."""
    torch.manual_seed(1)
    kwargs = dict(RESNET, in_channels=channels, out_channels=channels)
    path = export_generator(build_generator("resnet", kwargs), tmp_path / "g.safetensors",
                            arch="resnet", kwargs=kwargs, direction="a2b",
                            norm_stats="running", method="cyclegan", step=0)
    t = Translator.from_checkpoint(path, device="cpu")
    src = tmp_path / "in"
    src.mkdir()
    images = {f"{i}.png": noise(24 if i < 3 else 40, 32, seed=i) for i in range(6)}
    for name, rgb in images.items():
        Image.fromarray(rgb).save(src / name)
    for batch_size in (1, 2):
        out = tmp_path / f"out{batch_size}"
        report = convert(t, src, out, Options(batch_size=batch_size, workers=0),
                         progress=False)
        assert len(report.written) == 6
        for name, rgb in images.items():
            with Image.open(out / name) as image:
                got = np.asarray(image, int)
            want = t.translate_array(rgb).astype(int).reshape(got.shape)
            # batch 1 exactly; batches of 2 sum in another order (see above)
            assert np.abs(got - want).max() <= batch_size - 1, name


def test_host_buffers_rotate_per_shape_and_keep_the_recent_shapes():
    buffers = HostBuffers(pinned=False, depth=2, shapes=2)
    first, second, third = (buffers.get((2, 4, 4, 3)) for _ in range(3))
    assert first is not second and third is first  # a ring of two
    assert first.dtype == torch.uint8 and first.shape == (2, 4, 4, 3)
    buffers.get((1, 4, 4, 3))
    buffers.get((3, 4, 4, 3))  # the first shape is now the least recently used of three
    assert list(buffers.rings) == [(1, 4, 4, 3), (3, 4, 4, 3)]


def test_tiles_match_the_untiled_result(models):
    """A 300 x 420 image in 192 px tiles overlapping by 64 px, against one pass over the
    whole image (a randomly initialised ResNet, whose long-range interactions are stronger
    than a trained one's). Normalisation statistics are shared across tiles, so what remains
    is the receptive field cut at tile borders, which the blending hides. Measured (0-255
    scale): mean 0.40, 99.9th percentile 6, max 12; without overlap: mean 1.4, max 122."""
    t = Translator.from_checkpoint(models["resnet"], device="cpu")
    img = noise(300, 420)
    whole = t.translate_array(img).astype(int)
    blended = np.abs(whole - t.translate_array(img, tile=192, overlap=64))
    seams = np.abs(whole - t.translate_array(img, tile=192, overlap=0))
    print(f"tiled vs whole: mean {blended.mean():.3f}, 99.9th percentile "
          f"{np.percentile(blended, 99.9)}, max {blended.max()}; no overlap: mean "
          f"{seams.mean():.3f}, max {seams.max()}")
    assert blended.mean() < 0.6 and np.percentile(blended, 99.9) <= 8 and blended.max() <= 16
    assert seams.max() > 4 * blended.max()


def test_tiles_without_shared_statistics_would_disagree(models, monkeypatch):
    """The reason for shared statistics: per-tile instance norm shifts each tile's tone."""
    t = Translator.from_checkpoint(models["resnet"], device="cpu")
    img = noise(300, 420)
    img[:, 210:] = np.clip(img[:, 210:].astype(int) + 80, 0, 255)  # two halves, two tones
    whole = t.translate_array(img).astype(int)
    shared = np.abs(whole - t.translate_array(img, tile=128, overlap=64)).mean()
    monkeypatch.delattr(type(t), "shared_statistics")
    per_tile = np.abs(whole - t.translate_array(img, tile=128, overlap=64)).mean()
    assert per_tile > 2 * shared


def test_tile_layout():
    assert tile_starts(100, 100, 10) == [0]
    assert tile_starts(250, 100, 20) == [0, 80, 150]
    for starts in (tile_starts(1000, 128, 32), tile_starts(129, 128, 64)):
        assert starts[-1] + 128 in (1000, 129)
        assert all(b - a <= 128 - 32 for a, b in zip(starts, starts[1:]))
    w = ramp(8, 4, 2)
    assert 0 < w[0] < w[1] < w[2] < w[3] < w[4] == w[5] == 1 > w[6] > w[7] > 0


@pytest.mark.parametrize("length", [1028, 2048, 2832, 4240, 6000, 24000])  # padded to 4
def test_balanced_tiles_cover_with_no_more_tiles_and_less_work(length):
    tile, shared, stride = 1024, 100, 4
    size = balanced_tile(length, tile, shared, stride)
    starts, plain = tile_starts(length, size, shared), tile_starts(length, tile, shared)
    assert size <= tile and size % stride == 0 and len(starts) <= len(plain)
    assert starts[0] == 0 and starts[-1] + size == length and all(s % stride == 0
                                                                  for s in starts)
    assert all(shared <= a + size - b for a, b in zip(starts, starts[1:]))  # each shares
    assert len(starts) * size <= len(plain) * tile
    assert len(starts) * size < length * 1.2   # the overlap costs less than 20 % here
    assert balanced_tile(900, tile, shared, stride) == tile   # one tile: as before


def test_skip_existing_resumes(models, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(noise(16, 16, seed=i)).save(src / f"{i}.png")
    t = Translator.from_checkpoint(models["resnet"], device="cpu")
    convert(t, src, tmp_path / "out", Options(workers=0), progress=False)
    (tmp_path / "out" / "1.png").unlink()
    before = (tmp_path / "out" / "0.png").stat().st_mtime_ns
    report = convert(t, src, tmp_path / "out", Options(workers=0, skip_existing=True),
                     progress=False)
    assert report.written == [tmp_path / "out" / "1.png"] and len(report.skipped) == 2
    assert (tmp_path / "out" / "0.png").stat().st_mtime_ns == before


def test_glob_input_mirrors_the_tree(models, tmp_path):
    for rel in ("a/x.png", "a/b/y.png", "a/b/z.jpg", "c/w.png"):
        (tmp_path / "in" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(noise(8, 8)).save(tmp_path / "in" / rel)
    jobs = plan(str(tmp_path / "in" / "**" / "*.png"), tmp_path / "out")
    assert sorted(str(d.relative_to(tmp_path / "out")) for _, d in jobs) == \
        ["a/b/y.png", "a/x.png", "c/w.png"]
    with pytest.raises(UsageError, match="no files match"):
        plan(str(tmp_path / "in" / "*.gif"), tmp_path / "out")
    with pytest.raises(UsageError, match="inside the input folder"):
        plan(str(tmp_path / "in" / "**" / "*.png"), tmp_path / "in" / "out")


def test_cli_convert_options(models, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(noise(50, 70)).save(src / "sub" / "p.jpg")
    proc = run_cli("convert", "--checkpoint", str(models["resnet"]), "--input", str(src),
                   "--output", str(tmp_path / "out"), "--format", "webp", "--tile", "32",
                   "--overlap", "8", "--batch-size", "2", "--workers", "1", "--precision",
                   "bf16", "--quiet", check=True)
    assert "images/s" in proc.stderr and "bf16" in proc.stderr
    with Image.open(tmp_path / "out" / "sub" / "p.webp") as out:
        assert out.size == (70, 50)
    proc = run_cli("convert", "--checkpoint", str(models["resnet"]), "--input", str(src),
                   "--output", str(tmp_path / "out"), "--format", "webp", "--skip-existing",
                   "--quiet", check=True)
    assert "skipped 1 image(s)" in proc.stderr
    bad = run_cli("convert", "--checkpoint", str(models["resnet"]), "--input", str(src),
                  "--output", str(tmp_path / "o2"), "--batch-size", "0")
    assert bad.returncode == 2


def test_png_level_changes_the_size_never_the_pixels(models, tmp_path):
    """--png-level: the default (1) and 9 write the same pixels, 9 in a smaller file; a
    level outside 0-9 is refused before anything is written, naming the choices."""
    from translate.images import load_rgb

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(noise(120, 160)).save(src / "p.png")
    written = {}
    for level in (None, "9"):
        out = tmp_path / f"out{level}"
        run_cli("convert", "--checkpoint", str(models["resnet"]), "--input", str(src),
                "--output", str(out), "--workers", "0", "--quiet",
                *(("--png-level", level) if level else ()), check=True)
        written[level] = out / "p.png"
    assert np.array_equal(load_rgb(written[None]), load_rgb(written["9"]))
    assert written["9"].stat().st_size < written[None].stat().st_size
    bad = run_cli("convert", "--checkpoint", str(models["resnet"]), "--input", str(src),
                  "--output", str(tmp_path / "o2"), "--png-level", "10")
    assert bad.returncode == 2 and "--png-level" in bad.stderr and "0-9" in bad.stderr
    assert not (tmp_path / "o2").exists()


def test_the_command_line_and_the_library_write_png_alike():
    """convert's --png-level default is the library's (Options.png_level, PNG_LEVEL)."""
    from translate.cli.main import build_parser
    from translate.infer.convert import PNG_LEVEL

    args = build_parser().parse_args(["convert", "--checkpoint", "m", "--input", "i",
                                      "--output", "o"])
    assert args.png_level == Options().png_level == PNG_LEVEL


def test_tile_progress_counts_every_tile(models):
    """translate_array reports tiles as they finish (the demo and the CLI bar use this)."""
    t = Translator.from_checkpoint(models["resnet"], device="cpu")
    seen = []
    t.translate_array(noise(300, 500), tile=128, overlap=32, batch_size=2,
                      progress=lambda done, total: seen.append((done, total)))
    total = seen[0][1]
    assert total > 4 and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted({d for d, _ in seen})
    small = []
    t.translate_array(noise(64, 64), progress=lambda d, n: small.append((d, n)))
    assert small == [(1, 1)]


def test_no_image_to_convert_is_an_error_said_before_the_model_loads(models, tmp_path):
    """An empty folder, one of other files, a missing input: exit status 2 naming what
    the input holds, checked before the model (here a file that does not exist) is read."""
    (tmp_path / "empty").mkdir()
    other = tmp_path / "other"
    (other / "sub").mkdir(parents=True)
    (other / "notes.txt").write_text("x")
    (other / "sub" / "table.csv").write_text("x")
    (other / ".hidden.png").write_bytes(b"x")
    missing_model = str(tmp_path / "no_model.safetensors")
    for source, said in ((tmp_path / "empty", "it is empty"),
                         (other, "it holds 2 file(s) of other kinds (1 .csv, 1 .txt: "
                                 "notes.txt, sub/table.csv)"),
                         (tmp_path / "nothing", "does not exist")):
        proc = run_cli("convert", "--checkpoint", missing_model, "--input", str(source),
                       "--output", str(tmp_path / "out"), "--quiet")
        assert proc.returncode == 2, proc.stderr
        assert said in proc.stderr and "no_model" not in proc.stderr, proc.stderr
        assert not (tmp_path / "out").exists()
    with pytest.raises(UsageError, match=r"no image or video to convert in .*empty"):
        plan(tmp_path / "empty", tmp_path / "out")
