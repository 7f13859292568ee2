"""``python -m sam2elnet``: the ``elnet`` command line (same as ``python -m sam2elnet.cli``)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from sam2elnet.cli import main

    sys.exit(main())
