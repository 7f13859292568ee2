"""sam2elnet: SAM2-ELNet for remote sensing label enhancement and automatic annotation.

Importing the package sets the CPU thread policy (thread count from the CPUs this process may use,
sleeping rather than spinning OpenMP threads) before torch is loaded, and the heap policy (glibc
keeps freed tensor memory for reuse); see :mod:`sam2elnet.utils.threads` and
:mod:`sam2elnet.utils.heap` for what is set and how to override it. Keep this module free of
heavy imports (torch, numpy): they would load OpenMP before the policy is in place.
"""

from sam2elnet.utils import heap as _heap
from sam2elnet.utils import threads as _threads

__version__ = "0.1.0"

_threads.configure()
_heap.configure()
