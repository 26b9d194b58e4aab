"""Per-layer empirical NTK of the SGS CNN: structured derivatives vs Jacobian contraction.

``empirical_ntk_by_group`` of ``sgs_cnn(2, depth, width)`` (circular 5x5 convs) on ``n`` random
inputs of ``grid``^2 x 2, output traced over all positions (``trace_axes=(1, 2, 3)``), with
``STRUCTURED_DERIVATIVES`` and with ``JACOBIAN_CONTRACTION``: wall and CPU seconds (first call
includes compilation, so each is timed twice and the second call reported), the largest relative
difference of the per-group kernels, the load average and the peak RSS of the process. Writes
``benchmarks/results/transfer_layers.json``.

Usage: ``python benchmarks/transfer_layers.py [--n 8] [--grid 16] [--width 16] [--depth 6]``
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--grid", type=int, default=16)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--out", default="benchmarks/results/transfer_layers.json")
    args = ap.parse_args(argv)
    import jax
    import numpy as np

    from ntk_mlft._io import write_json_atomic
    from ntk_mlft.empirical import NtkImplementation, empirical_ntk_by_group
    from ntk_mlft.transfer.layers import sgs_cnn

    init, apply_fn, _ = sgs_cnn(2, args.depth, args.width)
    _, params = init(jax.random.key(0), (1, args.grid, args.grid, 2))
    x = jax.numpy.asarray(np.random.default_rng(0).standard_normal((args.n, args.grid, args.grid, 2)), np.float32)
    load0 = os.getloadavg()
    out = {"n": args.n, "grid": args.grid, "width": args.width, "depth": args.depth, "dtype": "float32",
           "load_average_start": list(load0), "implementations": {}}
    kernels = {}
    for impl in (NtkImplementation.STRUCTURED_DERIVATIVES, NtkImplementation.JACOBIAN_CONTRACTION):
        times = []
        for _ in range(2):
            w, c = time.perf_counter(), time.process_time()
            k = empirical_ntk_by_group(apply_fn, params, x, trace_axes=(1, 2, 3), vmap_axes=0, implementation=impl)
            k = {g: np.asarray(v) for g, v in k.items()}
            times.append((time.perf_counter() - w, time.process_time() - c))
        kernels[impl.name] = k
        out["implementations"][impl.name] = {"first_call_wall_s": times[0][0], "wall_s": times[1][0],
                                             "cpu_s": times[1][1]}
        print(impl.name, out["implementations"][impl.name], flush=True)
    a, b = kernels["STRUCTURED_DERIVATIVES"], kernels["JACOBIAN_CONTRACTION"]
    out["max_relative_difference"] = max(float(np.abs(a[g] - b[g]).max() / np.abs(b[g]).max()) for g in a)
    out["speedup_structured_over_jc_wall"] = (out["implementations"]["JACOBIAN_CONTRACTION"]["wall_s"]
                                              / out["implementations"]["STRUCTURED_DERIVATIVES"]["wall_s"])
    out["load_average_end"] = list(os.getloadavg())
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_json_atomic(args.out, out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
