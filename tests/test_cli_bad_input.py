"""Bad input to the CLI, as a new user types it: every case ends in one clear line and exit 2
(130 for Ctrl-C), never a traceback, a hang or a silently wrong number.

Table-driven and fast (nothing here builds a kernel or trains a network): each row is a command
line (``{d}`` = a folder of prepared files), the exit status and a phrase the message must
contain (what was wrong, in the user's terms). Add a row for every new way to get it wrong.
"""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from ntk_mlft.cli import main

POWER_LAW = ["--power-law", "coef=0.8,0.2", "exponent=1,1"]
ALLOC = ["allocate", "--costs", "{d}/costs.csv", "--budget", "100"]


def _write_files(d):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8))
    y1 = np.sin(x).sum(1, keepdims=True)
    y2 = y1 + 0.1 * np.cos(x).sum(1, keepdims=True)
    np.savez(d / "good.npz", x=x, y_level1=y1, y_level2=y2)
    np.savez(d / "same.npz", x=np.repeat(x[:1], 40, 0), y_level1=y1, y_level2=y2)
    np.savez(d / "dup.npz", x=np.concatenate([x[:20]] * 2), y_level1=np.concatenate([y1[:20]] * 2),
             y_level2=np.concatenate([y2[:20]] * 2))
    np.savez(d / "pooldup.npz", x=x, y_level1=y1, y_level2=y2, x_unlabeled=np.concatenate([rng.normal(size=(9, 8)),
                                                                                            x[3:4]]))
    np.savez(d / "gap.npz", x=x, y_level1=y1, y_level2=y2, y_level4=y2)
    np.savez(d / "cplx.npz", x=x, y_level1=y1 + 1j, y_level2=y2)
    np.savez(d / "extra.npz", x=x, y_level1=y1, y_level2=y2, labels=y1)
    np.savez(d / "three.npz", x=x, y_level1=y1, y_level2=y2, y_level3=y2)
    np.savez(d / "obj.npz", x=np.array([{"a": 1}] * 40, dtype=object), y_level1=y1)
    np.save(d / "bare.npy", x)
    (d / "text.npz").write_text("hello")
    (d / "empty.npz").write_bytes(b"")
    good = (d / "good.npz").read_bytes()
    (d / "trunc.npz").write_bytes(good[:len(good) // 2])
    bad = bytearray(good)
    bad[200] ^= 0xFF
    (d / "crc.npz").write_bytes(bytes(bad))
    (d / "folder.npz").mkdir()
    (d / "costs.csv").write_text("level,grid,cost_seconds\n1,64,0.5\n2,128,2\n")
    (d / "comma.csv").write_text("level,grid,cost_seconds\n1,64,1,5\n2,128,2\n")
    (d / "short.csv").write_text("level,grid,cost_seconds\n1,64,0.5\n2,128\n")
    (d / "bom.csv").write_bytes(b"\xef\xbb\xbflevel,grid,cost_seconds\r\n1,64,0.5\r\n2,128,2\r\n")
    (d / "latin.csv").write_bytes(b"level,grid,cost_seconds\n1,64,0.5\xe9\n2,128,2\n")
    (d / "tiny.csv").write_text("level,grid,cost_seconds\n1,64,1e-320\n2,128,2e-320\n")
    (d / "csvdir").mkdir()
    (d / "measured_bad.csv").write_text("allocation,budget,error\noptimal,10,-0.1\n")
    (d / "afile").write_text("not a folder")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad_input")
    _write_files(d)
    return d


# (id, argv, exit status, phrase in the one-line message)
CASES = [
    # --- wrong numbers with exit 0 before: degenerate inputs, bad cost rows, ambiguous options
    ("pilot-identical-x", [*ALLOC, "--pilot", "{d}/same.npz"], 2, "39 of 40 input rows repeat an earlier row"),
    ("pilot-duplicated-x", [*ALLOC, "--pilot", "{d}/dup.npz"], 2, "20 of 40 input rows repeat"),
    ("pool-repeats-pilot", [*ALLOC, "--pilot", "{d}/pooldup.npz"], 2, "estimator's pool"),
    ("cost-decimal-comma", ["allocate", "--costs", "{d}/comma.csv", "--budget", "100", *POWER_LAW], 2,
     "line 2 has 4 cells"),
    ("cost-short-row", ["allocate", "--costs", "{d}/short.csv", "--budget", "100", *POWER_LAW], 2,
     "line 3 has 2 cells"),
    ("cost-latin1", ["allocate", "--costs", "{d}/latin.csv", "--budget", "100", *POWER_LAW], 2,
     "latin.csv is not UTF-8"),
    ("cost-folder", ["allocate", "--costs", "{d}/csvdir", "--budget", "100", *POWER_LAW], 2, "is a folder"),
    ("cost-missing", ["allocate", "--costs", "{d}/nope.csv", "--budget", "100", *POWER_LAW], 2, "does not exist"),
    ("budgets-repeated", ["curves", "--costs", "{d}/costs.csv", "--budgets", "100,100,100", *POWER_LAW,
                          "--out", "{d}/c1"], 2, "more than once"),
    ("floor-two-values", [*ALLOC, "--power-law", "coef=0.8,0.2", "exponent=1,1", "floor=0.1,0.2"], 2,
     "floor is one number"),
    ("coef-twice", [*ALLOC, "--power-law", "coef=0.8,0.2", "coef=1,1", "exponent=1,1"], 2, "coef= is given twice"),
    ("power-law-levels", [*ALLOC, "--power-law", "coef=0.8,0.2,0.1", "exponent=1,1,1"], 2, "one entry per level"),
    ("power-law-negative", [*ALLOC, "--power-law", "coef=-0.8,0.2", "exponent=1,1"], 2, "coef must be >= 0"),
    ("pilot-level-gap", [*ALLOC, "--pilot", "{d}/gap.npz"], 2, "missing ['y_level3']"),
    ("pilot-complex", [*ALLOC, "--pilot", "{d}/cplx.npz"], 2, "y_level1 is complex"),
    ("pilot-unknown-key", [*ALLOC, "--pilot", "{d}/extra.npz"], 2, "unknown key(s) ['labels']"),
    ("pilot-vs-cost-levels", [*ALLOC, "--pilot", "{d}/three.npz"], 2, "has 3 levels"),
    # --- damaged pilot files: one message naming the file and the fault
    ("pilot-bare-npy", [*ALLOC, "--pilot", "{d}/bare.npy"], 2, "bare.npy is a single .npy array"),
    ("pilot-text", [*ALLOC, "--pilot", "{d}/text.npz"], 2, "text.npz is not an .npz archive"),
    ("pilot-empty", [*ALLOC, "--pilot", "{d}/empty.npz"], 2, "empty.npz is empty (0 bytes)"),
    ("pilot-truncated", [*ALLOC, "--pilot", "{d}/trunc.npz"], 2, "trunc.npz is damaged"),
    ("pilot-bad-crc", [*ALLOC, "--pilot", "{d}/crc.npz"], 2, "crc.npz is damaged"),
    ("pilot-folder", [*ALLOC, "--pilot", "{d}/folder.npz"], 2, "folder.npz is a folder"),
    ("pilot-missing", [*ALLOC, "--pilot", "{d}/nope.npz"], 2, "nope.npz does not exist"),
    ("pilot-object-array", [*ALLOC, "--pilot", "{d}/obj.npz"], 2, "object (pickled) arrays"),
    # --- fail fast: --out, budgets vs the cost table, sizes that cannot finish
    ("out-dot-for-a-file", [*ALLOC, *POWER_LAW, "--out", "."], 2, "--out . is a folder"),
    ("out-file-for-a-folder", ["curves", "--costs", "{d}/costs.csv", "--budgets", "10:100:3", *POWER_LAW,
                               "--out", "{d}/afile"], 2, "is an existing file"),
    ("out-under-a-file", [*ALLOC, *POWER_LAW, "--out", "{d}/afile/report.json"], 2, "is a file, not a folder"),
    ("out-unwritable", [*ALLOC, *POWER_LAW, "--out", "/proc/ntk-mlft-report.json"], 2, "is not writable"),
    ("budget-below-one-sample", ["allocate", "--costs", "{d}/costs.csv", "--budget", "1", *POWER_LAW], 2,
     "minimum budget needed is 2 s"),
    ("budgets-below-one-sample", ["curves", "--costs", "{d}/costs.csv", "--budgets", "0.05:50:20", *POWER_LAW,
                                  "--out", "{d}/c2"], 2, "or give --budget-samples"),
    ("budget-samples-below-one", ["curves", "--costs", "{d}/costs.csv", "--budget-samples", "0.5,3", *POWER_LAW,
                                  "--out", "{d}/c3"], 2, "--budget-samples: 1 s is below"),
    ("at-below-one-sample", ["curves", "--costs", "{d}/costs.csv", "--budgets", "10,100", *POWER_LAW, "--at", "0.1",
                             "--out", "{d}/c4"], 2, "--at: 0.1 s is below"),
    ("budget-negative", [*ALLOC[:-1], "-1", *POWER_LAW], 2, "--budget must be finite and > 0"),
    ("budget-nan", [*ALLOC[:-1], "nan", *POWER_LAW], 2, "must be finite and > 0"),
    ("budget-1e300", [*ALLOC[:-1], "1e300", *POWER_LAW], 2, "more than the largest count supported"),
    ("costs-1e-320", ["allocate", "--costs", "{d}/tiny.csv", "--budget", "1", *POWER_LAW], 2,
     "must be between 1e-100 and 1e+100 seconds"),
    ("levels-100", ["generate", "--levels", "100", "--counts", "1", "--out", "{d}/g1"], 2, "at most 8 levels"),
    ("counts-12-entries", ["generate", "--counts", ",".join(["1"] * 12), "--out", "{d}/g2"], 2, "at most 8 levels"),
    ("counts-negative", ["generate", "--counts", "5,-1,3", "--out", "{d}/g3"], 2, "(level 2) must be >= 1"),
    ("counts-text", ["generate", "--counts", "a,b", "--out", "{d}/g4"], 2, "comma-separated integers"),
    ("generate-n-unlabeled", ["generate", "--counts", "2,2", "--paired", "--n-unlabeled", "-1", "--out", "{d}/g5"],
     2, "--n-unlabeled must be >= 0"),
    ("costs-levels-100", ["costs", "--levels", "100", "--out", "{d}/c.csv"], 2, "at most 8 levels"),
    ("unknown-problem", ["allocate", "--problem", "nope", "--budget", "100"], 2, "available problems"),
    ("unknown-param", ["costs", "--param", "foo=1", "--out", "{d}/c.csv"], 2, "KEY one of"),
    ("param-not-int", ["costs", "--param", "n_coarse=abc", "--out", "{d}/c.csv"], 2, "must be an integer"),
    ("min-samples-0", [*ALLOC, *POWER_LAW, "--min-samples", "0"], 2, "min_samples must be >= 1"),
    ("max-samples-0", [*ALLOC, *POWER_LAW, "--max-samples", "0"], 2, "max_samples must be"),
    ("measured-wrong-columns", ["curves", "--costs", "{d}/costs.csv", "--budgets", "10,100", *POWER_LAW,
                                "--measured", "{d}/costs.csv", "--out", "{d}/c5"], 2, "lacks column(s)"),
    ("measured-negative-error", ["curves", "--costs", "{d}/costs.csv", "--budgets", "10,100", *POWER_LAW,
                                 "--measured", "{d}/measured_bad.csv", "--out", "{d}/c6"], 2, "must be > 0"),
    ("validate-bad-allocation", ["validate", "--allocations", "foo", "--out", "{d}/v2"], 2,
     "--allocations must be one of"),
    ("unknown-arch", [*ALLOC, "--pilot", "{d}/good.npz", "--arch", "nope"], 2, "--arch must be one of"),
    ("validate-budget-below-one-sample", ["validate", "--costs", "{d}/costs.csv", "--levels", "2", "--budget", "1",
                                          "--out", "{d}/v3"], 2, "--budget: 1 s is below"),
]


def _argv(argv, d):
    return [a.replace("{d}", str(d)) for a in argv]


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch):
    monkeypatch.setenv("NTK_MLFT_PROGRESS", "0")


@pytest.mark.parametrize("argv, status, phrase", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_one_clear_line(files, capsys, argv, status, phrase):
    assert main(_argv(argv, files)) == status
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ntk-mlft ") and ": error: " in lines[0], captured.err
    assert phrase in lines[0]
    assert captured.out == ""


def test_bom_and_crlf_cost_table_is_read(files, capsys):
    assert main(["allocate", "--costs", str(files / "bom.csv"), "--budget", "100", *POWER_LAW]) == 0
    assert "predicted relative MSE" in capsys.readouterr().out


@pytest.mark.parametrize("argv, phrase", [
    (["validate", "--seeds", "0"], "argument --seeds: must be >= 1"),
    (["validate", "--widths", "abc"], "comma-separated list of ints"),
    (["generate", "--counts"], "expected one argument"),
    (["allocate", "--budget", "1", "--seed", "-1"], "--seed: must be in 0..2147483647"),
    (["allocate", "--budget", "1", "--seed", "99999999999999999999"], "--seed: must be in 0.."),
    (["allocate", "--budget", "1", "--pilot", "p.npz", "--power-law", "coef=1"], "not allowed with argument"),
    (["demo", "--trials", "1"], "argument --trials: must be >= 2"),
    (["demo", "--budget-samples", "0"], "argument --budget-samples: must be >= 1"),
    (["demo", "--ridge", "nan"], "argument --ridge: must be finite and >= 0"),
    (["validate", "--max-steps", "-1"], "argument --max-steps: must be >= 0"),
    (["validate", "--n-test", "0"], "argument --n-test: must be >= 1"),
    # the error-model options (cli/_model_args.py) are one set, checked at parse time in every command
    ([*ALLOC, "--n-unlabeled", "-5", "--levels", "2"], "argument --n-unlabeled: must be >= 0"),
    ([*ALLOC, "--pilot", "good.npz", "--ridge", "-1"], "argument --ridge: must be finite and >= 0"),
    ([*ALLOC, *POWER_LAW, "--ridge", "nan"], "argument --ridge: must be finite"),
    ([*ALLOC, *POWER_LAW, "--levels", "0"], "argument --levels: must be >= 1"),
    (["validate", "--n-pilot", "0"], "argument --pilot-size/--n-pilot: must be >= 1"),
], ids=["validate-seeds-0", "validate-widths", "generate-no-value", "seed-negative", "seed-huge", "two-model-sources",
        "demo-trials-1",
        "demo-budget-samples-0", "demo-ridge-nan", "validate-max-steps", "validate-n-test", "allocate-n-unlabeled",
        "ridge-negative", "ridge-nan-with-power-law", "levels-0-with-power-law", "validate-n-pilot-0"])
def test_argparse_errors_exit_2_without_traceback(capsys, argv, phrase):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and phrase in err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    from ntk_mlft import __version__

    assert capsys.readouterr().out.strip() == f"ntk-mlft {__version__}"


@pytest.mark.parametrize("exc, status, phrase", [
    (KeyboardInterrupt(), 130, "interrupted (Ctrl-C)"),
    (PermissionError(13, "Permission denied", "/data/out.json"), 2, "/data/out.json: Permission denied"),
    (OSError(28, "No space left on device", "/data/x"), 2, "No space left on device (disk full?)"),
    (MemoryError(), 2, "out of memory"),
], ids=["ctrl-c", "permission", "disk-full", "memory"])
def test_interrupts_and_os_errors_are_one_line(files, capsys, monkeypatch, exc, status, phrase):
    import ntk_mlft.cli.allocate as allocate

    def boom(args):
        raise exc

    monkeypatch.setattr(allocate, "run", boom)
    assert main([*_argv(ALLOC, files), *POWER_LAW]) == status
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0]


def test_a_bug_keeps_its_traceback(files, monkeypatch):
    import ntk_mlft.cli.allocate as allocate

    def bug(args):
        raise KeyError("internal")

    monkeypatch.setattr(allocate, "run", bug)
    with pytest.raises(KeyError):
        main([*_argv(ALLOC, files), *POWER_LAW])


def _strict_load(text):
    def refuse(token):
        raise AssertionError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_json_is_strict_and_equals_the_out_file(files, capsys):
    out = files / "curves-json"
    # the equal split is infeasible at the first budget (NaN): null plus a reason, in both places
    argv = ["curves", "--costs", str(files / "costs.csv"), "--budgets", "2,100", *POWER_LAW, "--json",
            "--out", str(out)]
    assert main(argv) == 0
    printed = _strict_load(capsys.readouterr().out)
    written = _strict_load((out / "curves.json").read_text())
    assert printed == written
    assert printed["error_equal"][0] is None and "error_equal[0]" in printed["null_values"]


def test_allocate_json_equals_out_file(files, capsys):
    out = files / "alloc.json"
    assert main([*_argv(ALLOC, files), *POWER_LAW, "--json", "--out", str(out)]) == 0
    assert _strict_load(capsys.readouterr().out) == _strict_load(out.read_text())


def test_out_files_follow_the_umask(files, capsys):
    old = os.umask(0o027)
    try:
        out = files / "umask.json"
        assert main([*_argv(ALLOC, files), *POWER_LAW, "--out", str(out)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def test_predicted_errors_outside_zero_inf_raise():
    from ntk_mlft.allocation import optimize_allocation

    class Negative:
        n_levels = 2

        def error(self, counts):
            return -36.8 + 0.0 * float(np.sum(counts))

    with pytest.raises(ValueError, match=r"outside \[0, inf\)"):
        optimize_allocation(Negative(), [1.0, 2.0], 10.0)


def test_help_does_not_import_the_heavy_stack():
    """``ntk-mlft --help`` stays fast: parsing imports neither JAX, scipy nor the solvers."""
    import subprocess
    import sys

    code = ("import sys\nfrom ntk_mlft.cli.entry import build_parser\nbuild_parser()\n"
            "heavy = [m for m in ('jax', 'scipy', 'matplotlib', 'cvxpy', 'ntk_mlft.problems.elliptic') "
            "if m in sys.modules]\nprint(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip() == "[]"
