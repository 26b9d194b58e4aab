"""Kernel benchmark cases and the timing loop, shared by both sides of ``benchmarks/kernels.py``.

Imports only numpy and jax at module level, so the same file times ``ntk_mlft`` (imported by
``kernels.py``) and neural-tangents 0.6.5 on JAX 0.4.23 (run as a script in the side venv):

    .nt-venv/bin/python benchmarks/_nt_kernels.py --out nt.json [--quick] [--seed S]

Both sides build the same architectures with their own ``stax`` (ntk_mlft's structured
derivatives need its own ``stax`` apply_fn, which the same builder gives), get identical inputs and
parameters from ``numpy.random.default_rng(seed)``, wrap the computation in ``jax.jit`` and
report, per case and dtype: ``first_s`` (first call: tracing + compilation + one run),
``median_s`` (median of warm repeats) and a value check (mean of the NTK) so the two sides can be
seen to compute the same thing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

DTYPES = ("float32", "float64")


# GlobalAvgPool needs the full (N, N, |S|, |S|) covariance (neural-tangents too): smaller images
CNN1D_INPUT = {"flatten": (64, 1), "gap": (16, 1)}
CNN2D_INPUT = {"flatten": (8, 8, 1), "gap": (6, 6, 1)}


def cases(quick: bool) -> list[dict]:
    """The benchmark cases (issue 3): analytic MLP/CNN NTK+NNGP and empirical MLP NTK
    (``implementation`` 1 = Jacobian contraction, 2 = NTK-vector products, 3 = structured
    derivatives)."""
    if quick:
        return [
            {"name": "analytic-mlp3-relu", "kind": "analytic", "arch": "mlp3", "n": 200},
            {"name": "analytic-cnn2-circular", "kind": "analytic", "arch": "cnn2", "n": 20},
            {"name": "analytic-cnn2d-circular-gap", "kind": "analytic",
             "arch": "cnn2d-circular-gap", "n": 10},
            {"name": "empirical-mlp2-w512-jc", "kind": "empirical", "arch": "mlp2w512",
             "n": 50, "implementation": 1},
            {"name": "empirical-mlp2-w512-sd", "kind": "empirical", "arch": "mlp2w512",
             "n": 50, "implementation": 3},
        ]
    out = [{"name": "analytic-mlp3-relu", "kind": "analytic", "arch": "mlp3", "n": n}
           for n in (500, 2000, 4000)]
    out += [{"name": "analytic-mlp2-erf", "kind": "analytic", "arch": "mlp2erf", "n": 2000}]
    out += [{"name": "analytic-cnn2-circular", "kind": "analytic", "arch": "cnn2", "n": n}
            for n in (100, 300)]
    out += [{"name": f"analytic-{arch}", "kind": "analytic", "arch": arch, "n": n}
            for arch, n in (("cnn1d-same-flatten", 300), ("cnn1d-valid-flatten", 300),
                            ("cnn1d-circular-gap", 300), ("cnn2d-same-flatten", 300),
                            ("cnn2d-valid-flatten", 300), ("cnn2d-circular-gap", 100))]
    out += [{"name": "empirical-mlp2-w512-jc", "kind": "empirical", "arch": "mlp2w512", "n": n,
             "implementation": 1} for n in (200, 1000)]
    out += [{"name": "empirical-mlp2-w512-nvp", "kind": "empirical", "arch": "mlp2w512",
             "n": 200, "implementation": 2}]
    out += [{"name": "empirical-mlp2-w512-sd", "kind": "empirical", "arch": "mlp2w512", "n": n,
             "implementation": 3} for n in (200, 1000)]
    return out


def build(stax, arch: str):
    """``(init_fn, apply_fn, kernel_fn)`` and the input shape (without batch) of ``arch``."""
    if arch == "mlp3":
        layers = []
        for _ in range(3):
            layers += [stax.Dense(512, W_std=1.5, b_std=0.05), stax.Relu()]
        return stax.serial(*layers, stax.Dense(1, W_std=1.5, b_std=0.05)), (64,)
    if arch == "cnn2":
        conv = [stax.Conv(64, (3,), padding="CIRCULAR", W_std=1.5, b_std=0.05), stax.Relu()]
        return stax.serial(*conv, *conv, stax.Flatten(),
                           stax.Dense(1, W_std=1.5, b_std=0.05)), (64, 1)
    if arch == "mlp2erf":
        return stax.serial(stax.Dense(512, W_std=1.5, b_std=0.05), stax.Erf(),
                           stax.Dense(512, W_std=1.5, b_std=0.05), stax.Erf(),
                           stax.Dense(1, W_std=1.5, b_std=0.05)), (64,)
    if arch.startswith(("cnn1d-", "cnn2d-")):  # cnn{1,2}d-{padding}-{head}
        dims, padding, head = arch.split("-")
        two_d = dims == "cnn2d"
        filt, in_shape = ((3, 3), CNN2D_INPUT[head]) if two_d else ((3,), CNN1D_INPUT[head])
        conv = [stax.Conv(64, filt, padding=padding.upper(), W_std=1.5, b_std=0.05),
                stax.Relu()]
        pool = stax.Flatten() if head == "flatten" else stax.GlobalAvgPool()
        return stax.serial(*conv, *conv, pool, stax.Dense(1, W_std=1.5, b_std=0.05)), in_shape
    if arch == "mlp2w512":
        layers = [stax.Dense(512, W_std=1.5, b_std=0.05), stax.Relu(),
                  stax.Dense(512, W_std=1.5, b_std=0.05), stax.Relu(),
                  stax.Dense(1, W_std=1.5, b_std=0.05)]
        return stax.serial(*layers), (64,)
    raise ValueError(f"unknown arch {arch!r}")


def _timed(fn, *args, repeats_budget_s: float = 20.0, max_repeats: int = 7) -> dict:
    import jax

    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    while len(times) < 2 or (len(times) < max_repeats and sum(times) < repeats_budget_s):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return {"first_s": first, "median_s": statistics.median(times), "repeats": len(times),
            "times_s": times, "out": out}


def time_case(case: dict, dtype: str, stax, empirical_ntk_fn, seed: int) -> dict:
    """Time one case in one dtype with the given library (``stax`` module, NTK function)."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", dtype == "float64")
    (init_fn, apply_fn, kernel_fn), in_shape = build(stax, case["arch"])
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(case["n"], *in_shape)), dtype=dtype)
    if case["kind"] == "analytic":
        fn = jax.jit(lambda a: kernel_fn(a, None, ("nngp", "ntk")))
        res = _timed(fn, x)
        ntk = res.pop("out").ntk
    else:
        _, params = init_fn(jax.random.PRNGKey(seed), (1, *in_shape))
        leaves, treedef = jax.tree_util.tree_flatten(params)
        params = jax.tree_util.tree_unflatten(
            treedef, [jnp.asarray(rng.normal(size=np.shape(p)), dtype=dtype) for p in leaves])
        ntk_fn = empirical_ntk_fn(apply_fn, (-1,), (), 0, case["implementation"])
        fn = jax.jit(lambda a, p: ntk_fn(a, None, p))
        res = _timed(fn, x, params)
        ntk = res.pop("out")
    res["value_check"] = float(jnp.mean(ntk))
    res["dtype_out"] = str(ntk.dtype)
    return {**case, "dtype": dtype, **res}


def run_cases(case_list: list[dict], stax, empirical_ntk_fn, seed: int, log=print) -> list:
    out = []
    for case in case_list:
        for dtype in DTYPES:
            r = time_case(case, dtype, stax, empirical_ntk_fn, seed)
            log(f"  {r['name']:<26} N={r['n']:<5} {dtype}: median {r['median_s']:.4f} s "
                f"(first {r['first_s']:.2f} s, {r['repeats']} repeats)")
            out.append(r)
    return out


def main(argv: list[str] | None = None) -> int:
    """Neural-tangents side: run under the side venv (jax 0.4.23, neural-tangents 0.6.5)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", type=int, default=None,
                        help="run only case number ONLY of the list (0-based)")
    args = parser.parse_args(argv)
    import jax
    import neural_tangents as nt
    from neural_tangents import stax

    todo = cases(args.quick)
    todo = todo if args.only is None else [todo[args.only]]
    results = run_cases(todo, stax, nt.empirical_ntk_fn, args.seed)
    info = {"jax": jax.__version__, "neural_tangents": nt.__version__, "results": results}
    tmp = args.out + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(info, fh, indent=2)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
