"""How long ``ntk-mlft --help``, ``--version`` and ``COMMAND --help`` take, against the interpreter's
own start-up and ``import numpy`` measured in the same run (the README's "--help under 1 s").

Each command runs ``--repeats`` times as a fresh process (``python -m ntk_mlft.cli``), interleaved
so load changes hit every case alike; the JSON has median, 90th percentile and worst wall time
per case, the peak resident memory of the child processes, and the load average.

Usage: ``python benchmarks/cli_startup.py [--out DIR] [--repeats R] [--json]``; writes
cli_startup.json (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "python -c pass (interpreter start-up)": ["-c", "pass"],
    "python -c 'import numpy'": ["-c", "import numpy"],
    "ntk-mlft --help": ["-m", "ntk_mlft.cli", "--help"],
    "ntk-mlft --version": ["-m", "ntk_mlft.cli", "--version"],
    "ntk-mlft allocate --help": ["-m", "ntk_mlft.cli", "allocate", "--help"],
    "ntk-mlft demo --help": ["-m", "ntk_mlft.cli", "demo", "--help"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0, help="unused (no randomness); run_all passes it")
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    parser.add_argument("--json", action="store_true", help="print the JSON")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    times: dict[str, list[float]] = {name: [] for name in CASES}
    load_before = os.getloadavg()
    for _ in range(repeats):
        for name, argv in CASES.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, *argv], env=env, check=True, capture_output=True)
            times[name].append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MiB (Linux: KiB)
    import numpy as np

    result = {
        "repeats": repeats, "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "cpu_count": os.cpu_count(), "peak_child_rss_mib": peak,
        "seconds": {name: {"median": float(np.median(t)), "p90": float(np.percentile(t, 90)), "worst": float(max(t))}
                    for name, t in times.items()},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cli_startup.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, s in result["seconds"].items():
            print(f"{name:42s} median {s['median']:.2f} s, p90 {s['p90']:.2f} s, worst {s['worst']:.2f} s")
        print(f"load average {load_before[0]:.1f} -> {result['load_average_after'][0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
