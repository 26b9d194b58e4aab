"""The self-check every command that reports an optimum runs (``allocate``, ``curves``, ``demo``).

Contract: :func:`check_setup` runs :func:`ntk_mlft.estimators.selfcheck.pilot_consistency` on
an :class:`~ntk_mlft.studies.error_model.ErrorModelSetup` (the closed form vs Monte-Carlo on the
pilot pairs at the allocations, counts (M, L) on the setup's pool, scaled to the pilot's size;
random stream ``"self check"`` of ``seed``) and returns a frozen :class:`SetupCheck`: the
:class:`~ntk_mlft.estimators.selfcheck.PilotConsistency`, or ``None`` with the reason (no pilot
behind the model, e.g. ``--power-law``; a pilot too small for the scaled counts). ``as_dict``
is what a command's JSON carries under ``"self_check"`` / ``"self_check_note"``; ``render``
the lines its text output prints (a ``WARNING`` line with the numbers when the check disagrees
beyond its tolerance). Derivation: docs/theory.md section 9.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["NO_PILOT", "SetupCheck", "check_setup"]

NO_PILOT = "no pilot behind the error model (--power-law: a user model), so nothing to check it against"


@dataclass(frozen=True)
class SetupCheck:
    """consistency: the ``PilotConsistency`` (None when not run); note: why not, or '';
    labels: the allocations' names, one per checked row."""

    consistency: Any
    note: str = ""
    labels: tuple[str, ...] = ()

    @property
    def agrees(self) -> bool | None:
        return None if self.consistency is None else self.consistency.agrees

    def as_dict(self) -> dict[str, Any]:
        """``{"self_check": <PilotConsistency.as_dict()> | None, "self_check_note": reason | None}``."""
        c = self.consistency
        check = None if c is None else {"allocations": list(self.labels), **c.as_dict()}
        return {"self_check": check, "self_check_note": self.note or None}

    def render(self) -> list[str]:
        """Text lines: one status line; on disagreement a WARNING with the numbers per row."""
        c = self.consistency
        if c is None:
            return [f"self-check: not run — {self.note}"]
        if c.agrees:
            return [f"self-check: on the pilot pairs the closed form agrees with Monte-Carlo within "
                    f"{c.tolerance:.0%} (+ 2 s.e.) at the allocations scaled to the pilot "
                    f"{[r.tolist() for r in c.counts]}"]
        return [f"WARNING self-check: the closed form disagrees with Monte-Carlo on the pilot pairs "
                f"beyond {c.tolerance:.0%} (+ 2 s.e.); the predicted errors and gain are not to be trusted "
                "as they stand", *(f"  warning: {w}" for w in c.warnings)]


def check_setup(setup: Any, counts: Any, seed: int = 0, labels: Any = ()) -> SetupCheck:
    """The pilot self-check (module docstring) of counts (M, L) under ``setup`` (None: no pilot);
    labels: the rows' names."""
    from ntk_mlft._seeds import derived_seed
    from ntk_mlft.estimators.selfcheck import pilot_consistency

    labels = tuple(str(v) for v in labels)
    if setup is None:
        return SetupCheck(None, NO_PILOT, labels)
    n_p = setup.n_pilot
    ys = np.asarray(setup.pilot.ys, dtype=np.float64)
    y_pilot = ys.reshape(ys.shape[0], n_p, -1)
    try:
        check = pilot_consistency(setup.kernel[:n_p, :n_p], y_pilot, counts, setup.pool_size,
                                  ridge=setup.ridge_absolute, seed=derived_seed(seed, "self check"))
    except ValueError as err:   # e.g. more used levels than half the pilot: no disjoint sets fit
        return SetupCheck(None, f"the {n_p} pilot pairs are too few for the check ({err})", labels)
    return SetupCheck(check, "", labels)
