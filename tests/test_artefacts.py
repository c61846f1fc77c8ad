"""No-reference artefact figures (translate/artefacts.py) and ``translate eval --photos``:
a colour grade scores as harmless, a lattice as periodic, drawn structure as hallucinated
and an unrelated picture as a lost scene."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, run_cli

from translate.infer.artefacts import artefact_figures, fidelity, flattening, hallucination, \
    periodicity, summarise
from translate.images import load_rgb, save_image

PHOTOS = ROOT / "apps" / "photos"


def _grade(rgb: np.ndarray) -> np.ndarray:
    graded = rgb.astype(np.float32) * np.array([0.55, 0.7, 1.0]) * 0.6 + 12
    return np.clip(graded, 0, 255).astype(np.uint8)


def _lattice(rgb: np.ndarray, period: int = 8, amount: float = 20) -> np.ndarray:
    yy, xx = np.mgrid[:rgb.shape[0], :rgb.shape[1]]
    dots = ((yy % period < 2) & (xx % period < 2))[..., None]
    return np.clip(rgb.astype(np.float32) + amount * dots, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", ["astronaut.jpg", "picosdeeuropa.jpg", "coffee.jpg"])
def test_a_colour_grade_is_harmless(name):
    photo = load_rgb(PHOTOS / name)
    figures = artefact_figures(photo, _grade(photo))
    assert 0.7 < figures["periodicity"] < 1.3
    assert figures["hallucination"] < 0.05
    assert figures["fidelity"] > 0.97
    same = artefact_figures(photo, photo)
    assert same["periodicity"] == pytest.approx(1.0) and same["fidelity"] == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["astronaut.jpg", "picosdeeuropa.jpg", "coffee.jpg"])
def test_a_lattice_and_drawn_structure_are_caught(name):
    photo = load_rgb(PHOTOS / name)
    assert periodicity(photo, _lattice(photo)) > 10
    # windows painted onto the sky and faces: structure where the photo has none
    drawn = photo.copy()
    rng = np.random.default_rng(0)
    for y, x in rng.integers(0, min(photo.shape[:2]) - 12, (60, 2)):
        drawn[y:y + 6, x:x + 4] = (255, 220, 120)
    graded = hallucination(photo, _grade(photo))
    assert hallucination(photo, drawn) > max(0.01, 5 * graded)


def test_an_unrelated_picture_loses_the_scene():
    photo = load_rgb(PHOTOS / "astronaut.jpg")
    other = load_rgb(PHOTOS / "coffee.jpg")[:photo.shape[0], :photo.shape[1]]
    other = np.pad(other, ((0, photo.shape[0] - other.shape[0]),
                           (0, photo.shape[1] - other.shape[1]), (0, 0)), mode="edge")
    assert fidelity(photo, other) < 0.3 < 0.9 < fidelity(photo, _grade(photo))
    with pytest.raises(ValueError, match="the translation is"):
        artefact_figures(photo, other[:10])


def test_summary_takes_medians_and_the_worst_side():
    rows = [{"periodicity": p, "hallucination": h, "fidelity": f, "flattening": g}
            for p, h, f, g in ((1.0, 0.1, 0.9, 0.2), (3.0, 0.3, 0.5, -0.1),
                               (2.0, 0.2, 0.7, 0.0))]
    assert summarise(rows) == {"periodicity_median": 2.0, "periodicity_worst": 3.0,
                               "hallucination_median": 0.2, "hallucination_worst": 0.3,
                               "fidelity_median": 0.7, "fidelity_worst": 0.5,
                               "flattening_median": 0.0, "flattening_worst": -0.1,
                               "flat_inputs": 0}


@pytest.mark.parametrize("name", ["picosdeeuropa.jpg", "coffee.jpg", "chelsea.jpg"])
def test_flattening_tells_a_cel_look_from_a_grade_and_from_noise(name):
    """The anime renderer flattens texture into areas: the flat share rises by well over
    0.1 (measured 0.37-0.38 on these); a colour grade that also darkens leaves it near 0
    (within 0.01: the threshold follows the picture's own contrast) and noise lowers it."""
    from translate.data.scenes.photo import anime_from_photo

    photo = load_rgb(PHOTOS / name)
    cel = flattening(photo, anime_from_photo(photo))
    graded = flattening(photo, _grade(photo))
    rng = np.random.default_rng(0)
    noisy = np.clip(photo + rng.normal(0, 6, photo.shape), 0, 255).astype(np.uint8)
    assert cel > 0.2, cel
    assert abs(graded) < 0.03, graded
    assert flattening(photo, noisy) < -0.01
    assert flattening(photo, photo) == 0


def test_eval_photos_cli(tmp_path):
    photos, graded = tmp_path / "photos", tmp_path / "graded"
    for name in ("astronaut.jpg", "chelsea.jpg"):
        photo = load_rgb(PHOTOS / name)
        save_image(photo, photos / "sub" / name)
        save_image(_grade(photo), graded / "sub" / name.replace(".jpg", ".png"))
    proc = run_cli("eval", "--photos", str(photos), "--translated", str(graded), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["images"] == 2 and result["failed"] == []
    assert result["fidelity_worst"] > 0.97 and result["periodicity_median"] < 1.3
    assert {r["name"] for r in result["per_image"]} == {"sub/astronaut.jpg", "sub/chelsea.jpg"}
    text = run_cli("eval", "--photos", str(photos), "--translated", str(graded))
    assert "edge correlation" in text.stdout and "periodicity" in text.stdout

    (graded / "sub" / "chelsea.png").unlink()
    missing = run_cli("eval", "--photos", str(photos), "--translated", str(graded), "--json")
    assert missing.returncode == 1 and "no translation of it" in missing.stderr
    both = run_cli("eval", "--photos", str(photos))
    assert both.returncode == 2 and "either --translated" in both.stderr
    neither = run_cli("eval", "--checkpoint", "x.safetensors")
    assert neither.returncode == 2 and "--data" in neither.stderr


def _flat(value: int, size: int = 64) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def test_flat_pictures_have_bounded_or_undefined_figures():
    """Black to white scored periodicity 1.27e19, identical constants fidelity 0 ('scene
    lost') and one changed pixel on grey hallucination 1.0."""
    black_to_white = artefact_figures(_flat(0), _flat(255))
    assert black_to_white["periodicity"] == pytest.approx(1.0)
    assert black_to_white["hallucination"] is None and black_to_white["fidelity"] is None
    same = artefact_figures(_flat(128), _flat(128))
    assert same == {"periodicity": pytest.approx(1.0), "hallucination": None,
                    "fidelity": None, "flattening": 0.0}
    dot = _flat(128)
    dot[30, 30] = 200
    one_pixel = artefact_figures(_flat(128), dot)
    assert one_pixel["hallucination"] is None and one_pixel["fidelity"] is None
    assert 0.5 < one_pixel["periodicity"] < 3
    # a lattice drawn on a flat input is still caught, and its figure is finite
    lattice = periodicity(_flat(128, 256), _lattice(_flat(128, 256)))
    assert 10 < lattice < 1e12
    # a photo's edges lost to a flat output: the scene is lost, nothing is drawn
    photo = load_rgb(PHOTOS / "astronaut.jpg")
    lost = artefact_figures(photo, np.full_like(photo, 90))
    assert lost["fidelity"] == 0.0 and lost["hallucination"] == 0.0
    assert 0 < lost["periodicity"] <= 1.0


def test_the_summary_leaves_undefined_figures_out_and_counts_them(tmp_path):
    rows = [{"periodicity": 1.0, "hallucination": None, "fidelity": None},
            {"periodicity": 2.0, "hallucination": 0.2, "fidelity": 0.8}]
    summary = summarise(rows)
    assert summary["fidelity_median"] == 0.8 and summary["hallucination_worst"] == 0.2
    assert summary["periodicity_median"] == 1.5 and summary["flat_inputs"] == 1
    assert summarise(rows[:1])["fidelity_worst"] is None
    photos, out = tmp_path / "photos", tmp_path / "out"
    save_image(_flat(40), photos / "black.png")
    save_image(_flat(220), out / "black.png")
    proc = run_cli("eval", "--photos", str(photos), "--translated", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "undefined" in proc.stdout and "1 photo(s) without edges" in proc.stdout
