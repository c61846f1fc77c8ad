"""The command line: the entry point and one module per command group."""

from translate.cli.main import main

__all__ = ["main"]
