"""Empirical (finite-width) NTK and NNGP of a network's ``apply_fn``, neural-tangents compatible.

``ntk`` holds the public functions (three implementations: Jacobian contraction, NTK-vector
products, structured derivatives, plus the per-parameter-group split); ``_structured`` the
structured-derivative rules per layer; ``_axes`` the trace/diagonal axis bookkeeping shared by all
three. Derivations: ``docs/theory.md`` § Empirical NTK.
"""

from ntk_mlft.empirical.ntk import NtkImplementation as NtkImplementation
from ntk_mlft.empirical.ntk import empirical_kernel_fn as empirical_kernel_fn
from ntk_mlft.empirical.ntk import empirical_nngp_fn as empirical_nngp_fn
from ntk_mlft.empirical.ntk import empirical_ntk_by_group as empirical_ntk_by_group
from ntk_mlft.empirical.ntk import empirical_ntk_fn as empirical_ntk_fn
from ntk_mlft.empirical.ntk import resolve_groups as resolve_groups

__all__ = ["NtkImplementation", "empirical_kernel_fn", "empirical_nngp_fn", "empirical_ntk_by_group",
           "empirical_ntk_fn", "resolve_groups"]
