"""Fixtures of the pipeline tests that several test files use (helpers live in tests/helpers_*.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_serve import serving


@pytest.fixture
def serve_backend(tmp_path: Path) -> Iterator[tuple]:
    """``(MLBackend, base URL, root)`` of a served backend (:func:`helpers_serve.serving`)."""
    with serving(tmp_path) as got:
        yield got
