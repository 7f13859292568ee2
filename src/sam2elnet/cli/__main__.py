"""``python -m sam2elnet.cli``: the ``elnet`` command line without the console script.

Useful where the ``elnet`` script is not on ``PATH`` (a virtual environment that is not
activated, a source checkout with ``PYTHONPATH=src``). Same commands, messages and exit codes as
``elnet`` (see :func:`sam2elnet.cli.main`).
"""

from __future__ import annotations

import sys

from sam2elnet.cli import main

if __name__ == "__main__":
    sys.exit(main())
