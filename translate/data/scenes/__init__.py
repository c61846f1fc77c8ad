"""Procedural scenes rendered in two styles at once, so every image has a true counterpart.

Each task module exposes ``<task>_pair(rng, size) -> (a, b)``: uint8 (size, size, 3) arrays,
deterministic for the state of ``rng`` and independent of any global random state.

- :mod:`.shapes`: discs and boxes (A) under a fixed colour mapping (B).
- :mod:`.day2night`: a street, park or waterfront scene by day (A) and by night (B).
- :mod:`.real2anime`: a head-and-shoulders portrait, photo-like (A) and anime-like (B).
- :mod:`.canvas`: the drawing helpers they share (supersampled float canvases).

The registry of tasks is ``translate.data.synth.TASKS``.
"""
