"""Analytic kernels on 1 vs K JAX devices (rows sharded by ``ntk_mlft.kernels._layout``).

Each device count runs in its own subprocess (``XLA_FLAGS=--xla_force_host_platform_device_count=K``
must be set before JAX starts; on a GPU host the GPUs are the devices and no flag is needed):
float64 NNGP + NTK, ``x2 = None``, of the 3-hidden-layer ReLU MLP (N = 2000, inputs of dim 64)
and of the 2-layer 1-D circular CNN + Flatten (N = 300, 64 x 1), as in ``benchmarks/kernels.py``,
and a ``kernel_blocks`` stream of the MLP NTK (``--stream-rows`` x 2000 in row blocks of 1000)
whose peak resident memory shows that the full matrix is never held. Reported per device count:
medians of 3 warm calls, the first call, the peak RSS of the subprocess, the maximum relative
difference to the 1-device values, and the load average (CPU devices of one host share its
cores: on the 2-core benchmark machine 2 devices cannot be faster than XLA's own threading).

Usage: ``python benchmarks/kernel_devices.py [--out DIR] [--devices 1,2] [--stream-rows N]``;
writes ``DIR/kernel_devices.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

_CHILD = r"""
import json, resource, statistics, sys, time
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
sys.path.insert(0, {here!r})
import _nt_kernels as cases
from ntk_mlft import stax
from ntk_mlft.kernels import kernel_blocks

out = {{"devices": [str(d) for d in jax.devices()], "cases": {{}}}}
values = {{}}
for arch, n in (("mlp3", 2000), ("cnn2", 300)):
    (_, _, kernel_fn), shape = cases.build(stax, arch)
    x = np.random.default_rng(0).normal(size=(n, *shape))
    t0 = time.perf_counter(); k = jax.block_until_ready(kernel_fn(x, None, ("nngp", "ntk")))
    first = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t0 = time.perf_counter(); jax.block_until_ready(kernel_fn(x, None, ("nngp", "ntk")))
        times.append(time.perf_counter() - t0)
    out["cases"][f"{{arch}} N={{n}}"] = {{"first_s": first, "median_s": statistics.median(times)}}
    values[arch] = np.asarray(k.ntk)
(_, _, kernel_fn), shape = cases.build(stax, "mlp3")
rng = np.random.default_rng(1)
x1, x2 = rng.normal(size=({rows}, 64)), rng.normal(size=(2000, 64))
t0 = time.perf_counter()
checksum = sum(float(b.sum()) for _, b in kernel_blocks(kernel_fn, x1, x2, 1000))
out["stream"] = {{"rows": {rows}, "cols": 2000, "block": 1000, "wall_s": time.perf_counter() - t0,
                 "full_matrix_bytes": {rows} * 2000 * 8, "checksum": checksum}}
out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
np.savez({npz!r}, **values)
with open({js!r}, "w") as fh:
    json.dump(out, fh)
"""


def run(devices: list[int], stream_rows: int) -> dict:
    import numpy as np

    results, ref = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        for k in devices:
            npz, js = os.path.join(tmp, f"{k}.npz"), os.path.join(tmp, f"{k}.json")
            env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={k}",
                   "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
            load = os.getloadavg()
            subprocess.run([sys.executable, "-c", _CHILD.format(here=HERE, rows=stream_rows,
                                                                npz=npz, js=js)],
                           env=env, check=True)
            with open(js) as fh:
                res = json.load(fh)
            res["load_average_at_start"] = load
            with np.load(npz) as vals:
                vals = {a: vals[a] for a in vals.files}
            ref = ref or vals
            res["max_rel_diff_vs_first"] = {
                a: float(np.max(np.abs(v - ref[a])) / np.max(np.abs(ref[a])))
                for a, v in vals.items()}
            results[str(k)] = res
    return {"device_counts": results, "load_average_at_end": os.getloadavg(),
            "cpu_count": os.cpu_count(),
            "note": "CPU devices forced by XLA_FLAGS share the host's cores"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("results", "benchmarks"))
    parser.add_argument("--devices", default="1,2", help="device counts, comma-separated")
    parser.add_argument("--stream-rows", type=int, default=20000)
    args = parser.parse_args(argv)
    from ntk_mlft._io import write_json_atomic

    res = run([int(v) for v in args.devices.split(",")], args.stream_rows)
    os.makedirs(args.out, exist_ok=True)
    write_json_atomic(os.path.join(args.out, "kernel_devices.json"), res)
    for k, r in res["device_counts"].items():
        cases = ", ".join(f"{c}: {v['median_s']:.3f} s" for c, v in r["cases"].items())
        print(f"{k} device(s): {cases}; stream {r['stream']['wall_s']:.1f} s, peak RSS "
              f"{r['peak_rss_bytes'] / 2**30:.2f} GiB (full matrix "
              f"{r['stream']['full_matrix_bytes'] / 2**30:.2f} GiB); max rel diff "
              f"{max(r['max_rel_diff_vs_first'].values()):.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
