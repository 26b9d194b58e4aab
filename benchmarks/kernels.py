"""Kernel engine speed: ntk_mlft vs neural-tangents 0.6.5 on the same machine, in one run.

Cases (issue 3), each in float32 and float64, all inside ``jax.jit``:

* analytic NTK + NNGP of a 3-hidden-layer ReLU MLP on N x 64 inputs, N = 500, 2000, 4000;
* analytic NTK + NNGP of a 2-hidden-layer Erf MLP (``analytic-mlp2-erf``), N = 2000;
* analytic NTK + NNGP of 2-layer ReLU CNNs (64 channels, filter 3 / 3x3) + head + Dense:
  ``analytic-cnn2-circular`` (1-D circular + Flatten on N x 64 x 1, N = 100, 300) and
  ``analytic-cnn{1d,2d}-{padding}-{flatten,gap}``: 1-D SAME/VALID + Flatten (64 x 1),
  1-D CIRCULAR + GlobalAvgPool (16 x 1), 2-D SAME/VALID + Flatten (8 x 8 x 1), all N = 300, and
  2-D CIRCULAR + GlobalAvgPool (6 x 6 x 1, N = 100; GlobalAvgPool needs the full
  ``(N, N, |S|, |S|)`` covariance on both sides);
* empirical NTK (``x2=None``, ``vmap_axes=0``) of a 2-hidden-layer width-512 ReLU MLP on
  N x 64 inputs: Jacobian contraction for N = 200, 1000, NTK-vector products for N = 200,
  structured derivatives (ours: ``ntk_mlft.empirical._structured``; NT: ``implementation=3``) for
  N = 200, 1000.

Reported per case: median of warm repeats (``median_s``) and the first call (tracing +
compilation + one run, ``first_s``) separately. When the neural-tangents side venv exists
(``--nt-python``, default ``.nt-venv/bin/python`` of the repository) the identical cases run
there in a subprocess (``benchmarks/_nt_kernels.py``) right after ours, and ``ratio`` =
ours / neural-tangents (median); otherwise ``"nt": null``. Timings on a shared machine are
noisy: compare ratios from the same run only.

``--large`` instead runs the one big case (ours only, minutes): the 20,000 x 20,000 float64
NNGP + NTK of a 3-hidden-layer ReLU MLP (inputs of dim 64) with ``stax.batch`` (blocks of
``--large-batch`` rows streamed into host numpy arrays, progress bar on a terminal), recording
wall time, peak resident memory (``resource.getrusage``, the whole process) and a check of the
kernel on 400 random inputs against the unbatched ``kernel_fn``. Each mode replaces only its own part of
``DIR/kernels.json`` (``results`` / ``large``).

``goal`` in the JSON summarises the issue-16 target: speedups (NT / ours) of the float64 analytic
cases at N = 2000 (MLP, Erf) and the CNN cases (N = 300, and N = 100 for the 2-D GlobalAvgPool
case), their geometric mean and minimum; ``machine`` has the load average at start and end and
the peak resident memory of our process and of the neural-tangents subprocesses.
``--cases REGEX`` runs only the cases whose name matches (recorded as ``case_filter``).

Usage: ``python benchmarks/kernels.py [--out DIR] [--quick] [--seed S] [--json]
[--nt-python PATH] [--cases REGEX] [--large [--large-n N] [--large-batch B]]``; writes
``DIR/kernels.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_NT_PYTHON = os.path.join(os.path.dirname(HERE), ".nt-venv", "bin", "python")


def _load_loop_module():
    sys.path.insert(0, HERE)
    try:
        import _nt_kernels
    finally:
        sys.path.remove(HERE)
    return _nt_kernels


def _machine() -> dict:
    import jax
    import numpy as np

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "jax": jax.__version__,
            "numpy": np.__version__, "backend": jax.default_backend(),
            "load_average_at_start": load,
            "note": "shared 2-core machine, other jobs running: absolute times are noisy, "
                    "ours/NT ratios come from back-to-back runs in the same process tree"}


def _run_nt(nt_python: str, quick: bool, seed: int, only: int) -> dict | None:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "nt.json")
        cmd = [nt_python, os.path.join(HERE, "_nt_kernels.py"), "--out", out, "--seed",
               str(seed), "--only", str(only)] + (["--quick"] if quick else [])
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
        proc = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True,
                              env=env, check=False)
        if proc.returncode != 0:
            print(f"neural-tangents side failed (exit {proc.returncode}):\n"
                  f"{proc.stderr[-2000:]}", file=sys.stderr)
            return None
        with open(out) as fh:
            return json.load(fh)


def _key(r: dict) -> tuple:
    return r["name"], r["n"], r["dtype"]


def _goal(rows: list[dict]) -> dict:
    """Speedups NT / ours of the issue-16 goal cases (float64, module docstring)."""
    import math

    picked = {f"{r['case']} N={r['n']}": 1 / r["ratio"] for r in rows
              if "ratio" in r and r["dtype"] == "float64" and r["case"].startswith("analytic")
              and (r["n"] == 2000 or r["case"].startswith("analytic-cnn")
                   and r["n"] == max(q["n"] for q in rows if q["case"] == r["case"]))}
    if not picked:
        return {}
    values = list(picked.values())
    return {"speedup_nt_over_ours_float64": picked,
            "geometric_mean": math.exp(sum(map(math.log, values)) / len(values)),
            "min": min(values), "target": "geometric mean >= 1.5, every case >= 1.2"}


def run(quick: bool, seed: int, nt_python: str | None, case_filter: str | None = None) -> dict:
    from ntk_mlft import stax
    from ntk_mlft.empirical import empirical_ntk_fn

    loop = _load_loop_module()
    machine = _machine()

    def log(msg):
        print(msg, file=sys.stderr)

    have_nt = bool(nt_python) and os.path.exists(nt_python)
    if not have_nt:
        log(f"no neural-tangents venv at {nt_python!r}: recording ours only")
    ours, nt = [], None
    # Interleaved case by case (ours, then neural-tangents in a subprocess) so that load from
    # other jobs on the machine drifts into both sides of each ratio alike.
    for i, case in enumerate(loop.cases(quick)):
        if case_filter and not re.search(case_filter, case["name"]):
            continue
        log(f"ntk_mlft, {case['name']} N={case['n']}:")
        ours += loop.run_cases([case], stax, empirical_ntk_fn, seed, log=log)
        if have_nt:
            log(f"neural-tangents ({nt_python}):")
            part = _run_nt(nt_python, quick, seed, i)
            if part is not None:
                nt = nt or {**part, "results": []}
                nt["results"] += part["results"]
    nt_by_key = {} if nt is None else {_key(r): r for r in nt["results"]}
    rows = []
    for r in ours:
        ref = nt_by_key.get(_key(r))
        row = {"case": r["name"], "n": r["n"], "dtype": r["dtype"],
               "ours": {k: r[k] for k in ("median_s", "first_s", "repeats", "times_s",
                                          "value_check")},
               "nt": None if ref is None else {k: ref[k] for k in
                                               ("median_s", "first_s", "repeats", "times_s",
                                                "value_check")}}
        if ref is not None:
            row["ratio"] = r["median_s"] / ref["median_s"]
            row["first_call_ratio"] = r["first_s"] / ref["first_s"]
            row["value_rel_diff"] = (abs(r["value_check"] - ref["value_check"])
                                     / max(abs(ref["value_check"]), 1e-300))
        rows.append(row)
    machine["load_average_at_end"] = os.getloadavg()
    machine["peak_rss_ours_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    machine["peak_rss_nt_subprocess_bytes"] = \
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"quick": quick, "seed": seed, "case_filter": case_filter, "machine": machine,
            "goal": _goal(rows),
            "nt_side": None if nt is None else {"jax": nt["jax"],
                                                "neural_tangents": nt["neural_tangents"],
                                                "python": nt_python},
            "results": rows}


def run_large(n: int, batch_size: int, seed: int) -> dict:
    """The ``--large`` case (module docstring); call in a fresh process (peak RSS)."""
    import resource
    import time

    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    from ntk_mlft import stax

    layers = []
    for _ in range(3):
        layers += [stax.Dense(512, W_std=1.5, b_std=0.05), stax.Relu()]
    kernel_fn = stax.serial(*layers, stax.Dense(1, W_std=1.5, b_std=0.05))[2]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 64))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    k = stax.batch(kernel_fn, batch_size)(x, get=("nngp", "ntk"))
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # kilobytes on Linux
    idx = np.sort(rng.choice(n, size=min(n, 400), replace=False))  # rows from many blocks
    ref = kernel_fn(x[idx], None, ("nngp", "ntk"))       # x2=None, like batch's diagonal blocks
    check = {}
    for g in ("nngp", "ntk"):
        exact = np.asarray(getattr(ref, g))
        got = getattr(k, g)[np.ix_(idx, idx)]
        check[g] = float(np.max(np.abs(got - exact)) / np.max(np.abs(exact)))
    blocks = -(-n // batch_size)
    return {"n": n, "batch_size": batch_size, "dtype": "float64", "arch": "mlp3 (3 x Dense(512)"
            " + Relu, Dense(1)), inputs of dim 64", "wall_s": wall,
            "blocks_computed": blocks * (blocks + 1) // 2,
            "output_bytes": int(k.nngp.nbytes + k.ntk.nbytes),
            "peak_rss_bytes": peak_kb * 1024, "rss_before_bytes": rss0 * 1024,
            "max_rel_err_vs_unbatched_400x400": check, "machine": _machine()}


def _table(res: dict) -> str:
    lines = [f"{'case':<26} {'N':>5} {'dtype':<8} {'ours s':>9} {'NT s':>9} {'ours/NT':>8}"]
    for r in res.get("results", []):
        nt = r["nt"]
        lines.append(f"{r['case']:<26} {r['n']:>5} {r['dtype']:<8} "
                     f"{r['ours']['median_s']:>9.4f} "
                     f"{'-' if nt is None else format(nt['median_s'], '9.4f'):>9} "
                     f"{'-' if nt is None else format(r['ratio'], '8.2f'):>8}")
    if res.get("goal"):
        goal = res["goal"]
        lines.append(f"goal (float64, NT/ours): geometric mean {goal['geometric_mean']:.2f}x, "
                     f"min {goal['min']:.2f}x over {len(goal['speedup_nt_over_ours_float64'])} "
                     f"cases")
    if res.get("large"):
        big = res["large"]
        lines.append(f"large: {big['n']}^2 NNGP+NTK float64 in {big['wall_s']:.1f} s, peak RSS "
                     f"{big['peak_rss_bytes'] / 2**30:.2f} GiB (outputs "
                     f"{big['output_bytes'] / 2**30:.2f} GiB)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("results", "benchmarks"),
                        help="output folder for kernels.json (default results/benchmarks)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the JSON result")
    parser.add_argument("--nt-python", default=DEFAULT_NT_PYTHON,
                        help="python of the neural-tangents 0.6.5 venv (skipped if missing)")
    parser.add_argument("--cases", default=None, metavar="REGEX",
                        help="run only the cases whose name matches REGEX")
    parser.add_argument("--large", action="store_true",
                        help="run only the 20000^2 batched MLP kernel (minutes, ~7 GB of RAM)")
    parser.add_argument("--large-n", type=int, default=20000)
    parser.add_argument("--large-batch", type=int, default=2000)
    args = parser.parse_args(argv)
    from ntk_mlft._io import write_json_atomic

    path = os.path.join(args.out, "kernels.json")
    previous = {}
    if os.path.exists(path):
        with open(path) as fh:
            previous = json.load(fh)
    if args.large:
        res = {**previous, "large": run_large(args.large_n, args.large_batch, args.seed)}
    else:
        res = {**run(args.quick, args.seed, args.nt_python, args.cases),
               "large": previous.get("large")}
    os.makedirs(args.out, exist_ok=True)
    write_json_atomic(path, res)
    print(json.dumps(res, indent=2) if args.json else _table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
