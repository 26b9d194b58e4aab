"""Regenerate the validation figures (predicted vs measured MLFT error) from scratch, seeded.

For each problem: costs proportional to the grid size (``c_l = grid(l) · 1 µs``, the linear-cost
model of a grid solver — deterministic, unlike wall-clock measurements), budgets given in
finest-level samples' worth, then :func:`ntk_mlft.validation.validate` (optimal, single, equal
allocations; several widths and seeds; centred networks trained level by level). Writes, per
problem, ``validation.json``, ``validation.md`` and the two figures into ``--out/<problem>/``.

Usage: ``python paper_figures/validation.py [--problems elliptic-rough,...] [--widths 64,256,1024]
[--seeds 2] [--budget-samples 32,128] [--optimizer curveball] [--max-steps 300] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default="elliptic-rough")
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--arch", default="mlp-relu-3")
    ap.add_argument("--widths", default="64,256,1024")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--budget-samples", default="32,128",
                    help="budgets as multiples of one finest-level sample's cost")
    ap.add_argument("--optimizer", default="curveball")
    ap.add_argument("--max-steps", type=int, default=300)
    ap.add_argument("--n-test", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/paper_figures/validation")
    args = ap.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np

    from ntk_mlft._io import write_json_atomic, write_text_atomic
    from ntk_mlft.commands.validate import plot_error_vs_budget, plot_measured_vs_predicted
    from ntk_mlft.plotting import save_figure
    from ntk_mlft.problems import get_problem
    from ntk_mlft.validation import validate

    for name in args.problems.split(","):
        problem = get_problem(name, levels=args.levels)
        costs = np.array([problem.grid(lv) for lv in range(1, problem.n_levels + 1)], float) * 1e-6
        budgets = [float(b) * costs[-1] for b in args.budget_samples.split(",")]
        result = validate(problem, architecture=args.arch, budgets=budgets,
                          widths=[int(w) for w in args.widths.split(",")], seeds=range(args.seeds),
                          optimizer=args.optimizer, max_steps=args.max_steps, costs=costs,
                          n_test=args.n_test, seed=args.seed)
        out = Path(args.out) / name
        write_json_atomic(out / "validation.json", result.to_dict())
        write_text_atomic(out / "validation.md", result.table() + "\n")
        save_figure(plot_measured_vs_predicted(result), out / "measured_vs_predicted")
        save_figure(plot_error_vs_budget(result), out / "error_vs_budget")
        print(f"## {name}\n{result.error_model}\n{result.table()}")
        for g in result.gains():
            print(g)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
