"""Analytic infinite-width kernels (NNGP and NTK), neural-tangents 0.6.5 compatible.

The public layer API is ``ntk_mlft.stax``; this package holds the implementation
(see ``README.md`` here for the design) plus ``Kernel``, ``batch`` and the streaming ``kernel_blocks``,
and the layer-structure types the empirical NTK's structured derivatives read (``ApplyFn``,
``LinearTap``, ``UnsupportedStructure``).
"""

from ._batching import batch as batch
from ._batching import kernel_blocks as kernel_blocks
from ._kernel import Kernel as Kernel
from ._layer import ApplyFn as ApplyFn
from ._layer import LinearTap as LinearTap
from ._layer import UnsupportedStructure as UnsupportedStructure

__all__ = ["ApplyFn", "Kernel", "LinearTap", "UnsupportedStructure", "batch", "kernel_blocks"]
