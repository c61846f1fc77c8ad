"""Layouts, bad-layout messages, decoding of every image mode, damaged files, paired
augmentation and the reproducible sample stream."""

import itertools

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from translate.data.datasets import (DatasetError, PairedDataset, StreamSampler, detect_layout,
                            paired_items, resolve_layout, worker_init)
from translate.images import ImageError, image_size, load_rgb


def save(path, array=None, size=(12, 8), color=(10, 200, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array) if array is not None else Image.new("RGB", size, color)
    img.save(path)
    return path


def make_paired(root, names=("x", "y", "z")):
    rng = np.random.default_rng(0)
    for n in names:
        arr = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
        save(root / "train" / "A" / f"{n}.png", arr)
        save(root / "train" / "B" / f"{n}.png", 255 - arr)
    return root


def make_aligned(root, count=3):
    rng = np.random.default_rng(1)
    for i in range(count):
        save(root / "train" / f"{i}.jpg", rng.integers(0, 255, (16, 32, 3), dtype=np.uint8))
    return root


def make_unpaired(root):
    save(root / "trainA" / "1.png")
    save(root / "trainB" / "2.png")
    return root


def test_detects_each_layout(tmp_path):
    assert detect_layout(make_paired(tmp_path / "p")) == "paired"
    assert detect_layout(make_aligned(tmp_path / "a")) == "aligned"
    assert detect_layout(make_unpaired(tmp_path / "u")) == "unpaired"


@pytest.mark.parametrize("make,layout,message,found", [
    (make_aligned, "paired", r"data.layout=paired needs .*train/A", "aligned"),
    (make_aligned, "unpaired", r"data.layout=unpaired needs .*trainA, .*trainB", "aligned"),
    (make_paired, "aligned", r"data.layout=aligned needs images directly in .*train", "paired"),
    (make_paired, "unpaired", r"data.layout=unpaired needs .*trainA, .*trainB", "paired"),
    (make_unpaired, "paired", r"data.layout=paired needs .*train/A, .*train/B", "unpaired"),
    (make_unpaired, "aligned", r"data.layout=aligned needs .*train", "unpaired"),
])
def test_explicit_layout_is_checked(tmp_path, make, layout, message, found):
    """Every wrong explicit layout names what it needs, shows the tree and the layouts that
    work, and names the layout the folder does have."""
    root = make(tmp_path / "d")
    assert resolve_layout(root, found) == found
    with pytest.raises(DatasetError, match=message) as err:
        resolve_layout(root, layout)
    text = str(err.value)
    assert "Found:" in text and "ROOT/trainA" in text  # the tree and LAYOUTS_HELP
    assert f"has the {found} layout: set data.layout={found} or auto" in text


def test_pairs_whose_names_never_match(tmp_path, capsys):
    save(tmp_path / "train" / "A" / "x.png")
    save(tmp_path / "train" / "B" / "y.png")
    with pytest.raises(DatasetError, match="no usable training pairs"):
        paired_items(tmp_path, "paired")
    err = capsys.readouterr().err
    assert "have no counterpart and are left out: A/x, B/y" in err


def test_wrong_layout_shows_tree_and_layouts(tmp_path):
    save(tmp_path / "images" / "cat.jpg")
    save(tmp_path / "images" / "dog.jpg")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError) as err:
        resolve_layout(tmp_path, "auto")
    msg = str(err.value)
    assert "images/  (2 images)" in msg  # the tree that was found
    assert ".  (0 images, 1 other files)" in msg
    for layout in ("paired", "aligned", "unpaired"):
        assert layout in msg
    assert "ROOT/train/A/NAME.png" in msg and "ROOT/trainA" in msg


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="is not a folder"):
        resolve_layout(tmp_path / "nope", "auto")


def test_unpaired_data_is_refused_for_pairs(tmp_path):
    with pytest.raises(DatasetError, match="pix2pix needs paired data"):
        paired_items(make_unpaired(tmp_path), "unpaired")


def test_pairs_match_by_stem_and_unmatched_are_reported(tmp_path, capsys):
    root = make_paired(tmp_path, names=("a", "b"))
    save(root / "train" / "A" / "lonely.png")
    items = paired_items(root, "paired")
    assert [i.name for i in items] == ["a", "b"]
    assert all(i.a.stem == i.b.stem for i in items)
    assert "A/lonely" in capsys.readouterr().err


def test_corrupt_files_are_reported_once_and_skipped(tmp_path, capsys):
    root = make_aligned(tmp_path, count=2)
    (root / "train" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "train" / "empty.png").write_bytes(b"")
    items = paired_items(root, "aligned")
    err = capsys.readouterr().err
    assert len(items) == 2
    assert "skipping 2 file(s)" in err
    assert "broken.jpg" in err and "empty.png" in err


def test_truncated_file_is_skipped_while_loading(tmp_path, capsys):
    root = make_aligned(tmp_path, count=2)
    good = (root / "train" / "0.jpg").read_bytes()
    (root / "train" / "1.jpg").write_bytes(good[:len(good) // 3])  # header fine, data cut
    items = paired_items(root, "aligned")
    ds = PairedDataset(items, 16, 16, False)
    out = [ds[(i, i)] for i in range(2)]  # no exception: the damaged one is replaced
    assert all(o["a"].shape == (3, 16, 16) for o in out)
    assert capsys.readouterr().err.count("1.jpg") == 1


def test_empty_dataset_fails_up_front(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "A").mkdir()
    (tmp_path / "train" / "B").mkdir()
    with pytest.raises(DatasetError, match="no usable training pairs"):
        paired_items(tmp_path, "paired")


def test_only_corrupt_files_fail_up_front(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="no usable training pairs"):
        paired_items(tmp_path, "aligned")


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F",
                                  "YCbCr"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    base = Image.new("RGB", (9, 7), (200, 100, 50))
    if mode == "I;16":
        img = Image.fromarray(np.full((7, 9), 65535, np.uint16))
    elif mode in ("I", "F"):
        img = Image.fromarray(np.full((7, 9), 255, np.int32 if mode == "I" else np.float32))
        img = img.convert(mode)
    else:
        img = base.convert(mode)
    ext = {"CMYK": ".jpg", "YCbCr": ".jpg", "F": ".tif", "I": ".tif"}.get(mode, ".png")
    if mode == "YCbCr":
        img = base  # JPEG stores YCbCr internally
    path = tmp_path / f"img{ext}"
    img.save(path)
    arr = load_rgb(path)
    assert arr.shape == (7, 9, 3) and arr.dtype == np.uint8
    if mode in ("I;16", "I"):
        assert arr.min() == 255  # scaled to the full 8-bit range, not clipped garbage


def test_16_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 32768, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    arr = load_rgb(tmp_path / "g16.png")
    assert arr[0, :, 0].tolist() == [0, 128, 255]


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.info["transparency"] = 0
    img.save(tmp_path / "p.png", transparency=0)
    assert load_rgb(tmp_path / "p.png")[0, 0].tolist() == [255, 0, 0]


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = 255  # left half white
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    img.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = load_rgb(tmp_path / "rot.jpg")
    assert out.shape == (20, 10, 3)
    assert image_size(tmp_path / "rot.jpg") == (10, 20)
    assert out[:10].mean() > 200 and out[10:].mean() < 50  # white half is now on top



def test_png_size_comes_from_the_header(tmp_path):
    """A PNG's size and eXIf orientation are read without decoding its pixels: a file cut
    off inside its image data still reports its size, and loading it is what fails."""
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), np.uint8))
    exif = img.getexif()
    exif[0x0112] = 8
    img.save(tmp_path / "rot.png", exif=exif)
    assert image_size(tmp_path / "rot.png") == (30, 40)
    assert load_rgb(tmp_path / "rot.png").shape == (40, 30, 3)
    data = (tmp_path / "rot.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert image_size(tmp_path / "cut.png") == (30, 40)
    with pytest.raises(ImageError):
        load_rgb(tmp_path / "cut.png")

def test_not_an_image(tmp_path):
    (tmp_path / "x.png").write_text("hello")
    with pytest.raises(ImageError, match="x.png"):
        load_rgb(tmp_path / "x.png")


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    save(tmp_path / "big.png", size=(400, 300))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError):
        load_rgb(tmp_path / "big.png")


def test_paired_augmentation_is_identical_for_a_and_b(tmp_path):
    rng = np.random.default_rng(3)
    for i in range(4):
        arr = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
        save(tmp_path / "train" / "A" / f"{i}.png", arr)
        save(tmp_path / "train" / "B" / f"{i}.png", arr)
    ds = PairedDataset(paired_items(tmp_path, "paired"), 36, 24, flip=True)
    crops = set()
    for seed in range(16):
        item = ds[(0, seed)]
        assert item["a"].shape == (3, 24, 24)
        assert torch.equal(item["a"], item["b"])
        crops.add(item["a"].sum().item())
    assert len(crops) > 4  # different seeds, different crops and flips
    assert torch.equal(ds[(1, 5)]["a"], ds[(1, 5)]["a"])  # same seed, same result



def test_pairs_of_different_sizes_get_the_same_geometry(tmp_path):
    """A and B of a pair may differ in size (a 40 px sketch, an 80 px photo): both are
    resized to load_size first, so crop and flip still agree."""
    y, x = np.mgrid[0:80, 0:80]
    big = np.stack([x * 3, y * 3, (x + y) * 3 // 2], -1).astype(np.uint8)  # smooth ramps
    for i in range(2):
        save(tmp_path / "train" / "A" / f"{i}.png", big[::2, ::2])
        save(tmp_path / "train" / "B" / f"{i}.png", big)
    ds = PairedDataset(paired_items(tmp_path, "paired"), 36, 24, flip=True)
    for seed in range(8):
        item = ds[(seed % 2, seed)]
        assert item["a"].shape == item["b"].shape == (3, 24, 24)
        assert (item["a"] - item["b"]).abs().mean() < 0.03  # [-1, 1]: under 4 grey levels
    assert ds[0]["a"].shape == ds[0]["b"].shape == (3, 24, 24)

def test_aligned_items_are_split_into_halves(tmp_path):
    arr = np.zeros((8, 16, 3), np.uint8)
    arr[:, 8:] = 255
    save(tmp_path / "train" / "0.png", arr)
    ds = PairedDataset(paired_items(tmp_path, "aligned"), 8, 8, flip=False)
    item = ds[0]
    assert item["a"].max() == -1 and item["b"].min() == 1


def test_stream_is_reproducible_and_resumable():
    full = list(itertools.islice(StreamSampler(7, seed=3), 30))
    assert sorted(i for i, _ in full[:7]) == list(range(7))  # each epoch visits every item
    assert full[:7] != full[7:14]
    assert list(itertools.islice(StreamSampler(7, seed=3, start=12), 18)) == full[12:]
    assert full != list(itertools.islice(StreamSampler(7, seed=4), 30))


def test_ranks_split_an_epoch():
    keys = [list(itertools.islice(StreamSampler(10, 0, rank=r, world=2), 5)) for r in (0, 1)]
    assert sorted(i for k in keys for i, _ in k) == list(range(10))


def test_workers_give_the_same_batches_as_the_main_process(tmp_path):
    root = make_paired(tmp_path, names=[str(i) for i in range(6)])
    ds = PairedDataset(paired_items(root, "paired"), 20, 16, flip=True)

    def batches(workers):
        loader = DataLoader(ds, batch_size=2, sampler=StreamSampler(len(ds), 5),
                            num_workers=workers, worker_init_fn=worker_init)
        return [b["a"] for b in itertools.islice(loader, 6)]

    for x, y in zip(batches(0), batches(2)):
        assert torch.equal(x, y)
