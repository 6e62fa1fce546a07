"""The `knotflow` command line (see `commands`)."""

from knotflow.cli.commands import app, main

__all__ = ["app", "main"]
