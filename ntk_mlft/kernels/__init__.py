"""Analytic infinite-width kernels (NNGP and NTK), neural-tangents 0.6.5 compatible.

The public layer API is ``ntk_mlft.stax``; this package holds the implementation
(see ``README.md`` here for the design) plus ``Kernel``, ``batch`` and the streaming ``kernel_blocks``.
"""

from ._batching import batch as batch
from ._batching import kernel_blocks as kernel_blocks
from ._kernel import Kernel as Kernel

__all__ = ["Kernel", "batch", "kernel_blocks"]
