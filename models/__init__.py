"""The models that ship with translate (weights and their README; no code)."""
