"""Griffe extension for the API reference: Sphinx cross-reference roles in the docstrings
(``:func:`translate.devices.cpu_bf16_units```, ``:class:`~a.b.Box```) become inline code
(``cpu_bf16_units()``, ``Box``), since the Markdown the site renders has no such roles.

Named in ``mkdocs.yml`` under the Python handler's ``extensions``; not part of the package.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(mod|func|meth|class|data|attr|exc|obj|const):`(~?)([^`]+)`")
CALLABLE = {"func", "meth"}


def plain(docstring: str) -> str:
    """``docstring`` with each role replaced by inline code: ``~`` keeps the last dotted
    part, as Sphinx shows it, and functions and methods get ``()``."""
    def code(m: re.Match) -> str:
        role, short, target = m.groups()
        name = target.rsplit(".", 1)[-1] if short else target
        if role in CALLABLE and not name.endswith(")"):
            name += "()"
        return f"`{name}`"
    return ROLE.sub(code, docstring)


class SphinxRoles(griffe.Extension):
    """Rewrites each object's docstring once it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)
