"""CLI commands (filled in by its module owner)."""

from sam2elnet.cli.app import app  # noqa: F401
