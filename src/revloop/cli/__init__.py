"""The ``revloop`` command line."""

from __future__ import annotations

from revloop.cli._app import app as app
from revloop.cli._app import main as main

__all__ = ["app", "main"]
