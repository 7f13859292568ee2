"""CSV text for machine-readable outputs (quality.csv, metrics.csv, ...)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any


def csv_text(
    rows: Iterable[dict[str, Any]], fields: Sequence[str], float_format: str = ".6f"
) -> str:
    """Rows as CSV text with a fixed column order; unknown keys are ignored, floats formatted.

    Returned as text so callers write it with :func:`sam2elnet.utils.atomic.write_text_atomic`.
    """
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(
            {k: (format(v, float_format) if isinstance(v, float) else v) for k, v in r.items()}
        )
    return buf.getvalue()
