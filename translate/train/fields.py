"""What every part of the training config is made of: :func:`opt` declares a field with its
help text, choices and lower bound; :class:`ConfigError` is the error a bad value raises.
Methods declare their own options with these (:mod:`translate.train.methods`)."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from translate.errors import UserError


class ConfigError(UserError, ValueError):
    """A config file or override that cannot be used; the message says how to fix it.
    ``key``: the dotted key at fault, when there is one."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def opt(default: Any, help: str, choices: tuple | None = None, minimum: float | None = None):
    """A config field with its help text, allowed values and lower bound."""
    return field(default=default, metadata={"help": help, "choices": choices, "min": minimum})
