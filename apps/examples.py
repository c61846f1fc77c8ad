"""Example inputs for each tab: real photographs that the shipped models never trained on
(``apps/photos``, credited in ``apps/photos/CREDITS.md``). Nothing is translated until
someone clicks."""

from __future__ import annotations

from pathlib import Path

PHOTOS = Path(__file__).resolve().parent / "photos"

# task -> example files, the most telling first
EXAMPLES: dict[str, tuple[str, ...]] = {
    "real2anime": ("astronaut.jpg", "grace-hopper.jpg", "chelsea.jpg", "coffee.jpg"),
    "day2night": ("picosdeeuropa.jpg", "sunset.jpg", "friends.jpg", "wine.jpg"),
}


def example_photos(task: str) -> list[Path]:
    """The example photos of ``task`` that exist (all of them for the two demo tasks; the
    whole folder for any other task)."""
    names = EXAMPLES.get(task) or tuple(sorted(p.name for p in PHOTOS.glob("*.jpg")))
    return [PHOTOS / name for name in names if (PHOTOS / name).is_file()]
