"""``python -m revloop``."""

from __future__ import annotations

from revloop.cli import main

main()
