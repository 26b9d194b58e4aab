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
    _write_more_files(d, x, y1, y2, rng)


def _write_more_files(d, x, y1, y2, rng):
    """The second sweep's files: near-duplicates, magnitudes, shapes, more cost-table faults."""
    half = np.concatenate([x[:20], x[:20] * (1 + 1e-15) + 1e-17])
    np.savez(d / "near.npz", x=half, y_level1=y1, y_level2=y2)
    np.savez(d / "near1.npz", x=np.concatenate([x[:39], x[:1] + 1e-14]), y_level1=y1, y_level2=y2)
    np.savez(d / "xhuge.npz", x=x * 1e300, y_level1=y1, y_level2=y2)
    np.savez(d / "xtiny.npz", x=x * 1e-300, y_level1=y1, y_level2=y2)
    np.savez(d / "yhuge.npz", x=x, y_level1=y1 * 1e300, y_level2=y2 * 1e300)
    np.savez(d / "ytiny.npz", x=x, y_level1=y1 * 1e-300, y_level2=y2 * 1e-300)
    np.savez(d / "x1d.npz", x=x[:, 0], y_level1=y1, y_level2=y2)
    np.savez(d / "unlab_dim.npz", x=x, y_level1=y1, y_level2=y2, x_unlabeled=rng.normal(size=(50, 5)))
    np.savez(d / "unlab_nan.npz", x=x, y_level1=y1, y_level2=y2, x_unlabeled=np.full((50, 8), np.nan))
    np.savez(d / "unlab_near.npz", x=x, y_level1=y1, y_level2=y2,
             x_unlabeled=np.concatenate([rng.normal(size=(20, 8)), x[:2] * (1 + 1e-13)]))
    np.savez(d / "xnan.npz", x=np.where(np.arange(8) == 3, np.nan, x), y_level1=y1, y_level2=y2)
    np.savez(d / "ynan.npz", x=x, y_level1=np.where(np.arange(40)[:, None] == 5, np.nan, y1), y_level2=y2)
    np.savez(d / "xempty.npz", x=x[:0], y_level1=y1[:0], y_level2=y2[:0])
    np.savez(d / "nmismatch.npz", x=x, y_level1=y1[:30], y_level2=y2)
    np.savez(d / "outshape.npz", x=x, y_level1=y1, y_level2=np.concatenate([y2, y2], 1))
    np.savez(d / "yzero.npz", x=x, y_level1=0 * y1, y_level2=0 * y2)
    np.savez(d / "boolx.npz", x=x > 0, y_level1=y1, y_level2=y2)
    np.savez(d / "strx.npz", x=np.array(["a"] * 40), y_level1=y1, y_level2=y2)
    np.savez(d / "level0.npz", x=x, y_level0=y1, y_level1=y2)
    np.savez(d / "level01.npz", x=x, y_level01=y1, y_level02=y2)
    np.savez(d / "noy.npz", x=x)
    np.savez(d / "nox.npz", y_level1=y1, y_level2=y2)
    good = (d / "good.npz").read_bytes()
    (d / "trunc_end.npz").write_bytes(good[:-10])
    np.savez(d / "five.npz", x=x[:5], y_level1=y1[:5], y_level2=y2[:5])
    np.savez(d / "one.npz", x=x[:1], y_level1=y1[:1], y_level2=y2[:1])
    header = "level,grid,cost_seconds\n"
    tables = {"empty": "", "header_only": header, "wrong_header": "lvl,grid,seconds\n1,64,0.5\n2,128,2\n",
              "desc_cost": header + "1,64,2\n2,128,0.5\n", "equal_cost": header + "1,64,1\n2,128,1\n",
              "dup_levels": header + "1,64,0.5\n1,128,2\n", "level0": header + "0,64,0.5\n1,128,2\n",
              "level_gap": header + "1,64,0.5\n3,128,2\n", "neg_cost": header + "1,64,-0.5\n2,128,2\n",
              "zero_cost": header + "1,64,0\n2,128,2\n", "nan_cost": header + "1,64,nan\n2,128,2\n",
              "inf_cost": header + "1,64,0.5\n2,128,inf\n", "huge_cost": header + "1,64,1e200\n2,128,2e200\n",
              "grid_text": header + "1,abc,0.5\n2,128,2\n", "grid_float": header + "1,64.5,0.5\n2,128,2\n",
              "grid_neg": header + "1,-64,0.5\n2,128,2\n", "grid_huge": header + f"1,{2 ** 100},0.5\n2,{2 ** 101},2\n",
              "cost_text": header + "1,64,fast\n2,128,2\n", "one_level": header + "1,64,0.5\n",
              "semicolon": "level;grid;cost_seconds\n1;64;0,5\n2;128;2\n",
              "blank_lines": header + "1,64,0.5\n\n2,128,2\n\n", "extra_col": "level,grid,cost_seconds,note\n1,64,0.5,a\n2,128,2,b\n",
              "reordered": "cost_seconds,level,grid\n0.5,1,64\n2,2,128\n", "spaces": "level, grid, cost_seconds\n1, 64, 0.5\n2, 128, 2\n",
              "desc_levels": header + "2,128,2\n1,64,0.5\n",
              "meas_ok": "allocation,budget,error\noptimal,10,0.1\nsingle,10,0.2\n",
              "meas_alloc": "allocation,budget,error\nbest,10,0.1\n", "meas_nan": "allocation,budget,error\noptimal,nan,0.1\n",
              "meas_errnan": "allocation,budget,error\noptimal,10,nan\n", "meas_empty": "allocation,budget,error\n",
              "meas_stderr_neg": "allocation,budget,error,stderr\noptimal,10,0.1,-1\n",
              "meas_budget_neg": "allocation,budget,error\noptimal,-5,0.1\n"}
    for name, text in tables.items():
        (d / f"{name}.csv").write_text(text)
    (d / "nul.csv").write_bytes(b"level,grid,cost_seconds\n1,64,0.5\x00\n2,128,2\n")


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
    ("budget-negative", [*ALLOC[:-1], "-1", *POWER_LAW], 2, "--budget: must be finite and > 0"),
    ("budget-nan", [*ALLOC[:-1], "nan", *POWER_LAW], 2, "must be finite and > 0"),
    ("budget-1e300", [*ALLOC[:-1], "1e300", *POWER_LAW], 2, "more than the largest count supported"),
    ("costs-1e-320", ["allocate", "--costs", "{d}/tiny.csv", "--budget", "1", *POWER_LAW], 2,
     "must be between 1e-100 and 1e+100 seconds"),
    ("levels-100", ["generate", "--levels", "100", "--counts", "1", "--out", "{d}/g1"], 2, "at most 8 levels"),
    ("counts-12-entries", ["generate", "--counts", ",".join(["1"] * 12), "--out", "{d}/g2"], 2, "at most 8 levels"),
    ("counts-negative", ["generate", "--counts", "5,-1,3", "--out", "{d}/g3"], 2, "(level 2) must be >= 1"),
    ("counts-text", ["generate", "--counts", "a,b", "--out", "{d}/g4"], 2, "comma-separated integers"),
    ("generate-n-unlabeled", ["generate", "--counts", "2,2", "--paired", "--n-unlabeled", "-1", "--out", "{d}/g5"],
     2, "--n-unlabeled: must be >= 0"),
    ("costs-levels-100", ["costs", "--levels", "100", "--out", "{d}/c.csv"], 2, "at most 8 levels"),
    ("unknown-problem", ["allocate", "--problem", "nope", "--budget", "100"], 2, "available problems"),
    ("unknown-param", ["costs", "--param", "foo=1", "--out", "{d}/c.csv"], 2, "KEY one of"),
    ("param-not-int", ["costs", "--param", "n_coarse=abc", "--out", "{d}/c.csv"], 2, "must be an integer"),
    ("min-samples-0", [*ALLOC, *POWER_LAW, "--min-samples", "0"], 2, "--min-samples: must be >= 1"),
    ("max-samples-0", [*ALLOC, *POWER_LAW, "--max-samples", "0"], 2, "--max-samples: must be >= 1"),
    ("measured-wrong-columns", ["curves", "--costs", "{d}/costs.csv", "--budgets", "10,100", *POWER_LAW,
                                "--measured", "{d}/costs.csv", "--out", "{d}/c5"], 2, "lacks column(s)"),
    ("measured-negative-error", ["curves", "--costs", "{d}/costs.csv", "--budgets", "10,100", *POWER_LAW,
                                 "--measured", "{d}/measured_bad.csv", "--out", "{d}/c6"], 2, "line 2: allocation must be one of"),
    ("validate-bad-allocation", ["validate", "--allocations", "foo", "--out", "{d}/v2"], 2,
     "--allocations must be one of"),
    ("allocate-n-unlabeled", [*ALLOC, "--n-unlabeled", "-5", "--levels", "2"], 2, "--n-unlabeled: must be >= 0"),
    ("unknown-arch", [*ALLOC, "--pilot", "{d}/good.npz", "--arch", "nope"], 2, "--arch must be one of"),
    ("ridge-negative", [*ALLOC, "--pilot", "{d}/good.npz", "--ridge", "-1"], 2, "--ridge: must be finite and >= 0"),
    ("ridge-nan-with-power-law", [*ALLOC, *POWER_LAW, "--ridge", "nan"], 2, "--ridge: must be finite"),
    ("levels-0-with-power-law", [*ALLOC, *POWER_LAW, "--levels", "0"], 2, "--levels: must be >= 1"),
    ("validate-budget-below-one-sample", ["validate", "--costs", "{d}/costs.csv", "--levels", "2", "--budget", "1",
                                          "--out", "{d}/v3"], 2, "--budget: 1 s is below"),
]


A2 = ["allocate", "--costs", "{d}/costs.csv", "--budget", "100"]  # + --pilot FILE
CV = ["curves", "--costs", "{d}/costs.csv", *POWER_LAW]
GEN = ["generate", "--out", "{d}/gen"]
VAL = ["validate", "--costs", "{d}/costs.csv", "--levels", "2", "--out", "{d}/val"]
DEMO = ["demo", "--out", "{d}/demo"]
TR = ["transfer", "scaling", "--out", "{d}/tr"]
HUGE = "more than this machine's"


def _table(name):
    return ["allocate", "--costs", f"{{d}}/{name}.csv", "--budget", "100", *POWER_LAW]


# The second sweep (every case tried there; phrases are what the user must be told).
CASES += [
    # near-duplicates, magnitudes, shapes: refused before any kernel is built
    ("pilot-near-duplicates", [*A2, "--pilot", "{d}/near.npz"], 2, "20 of 40 input rows equal an earlier row up to round-off"),
    ("pilot-one-near-duplicate", [*A2, "--pilot", "{d}/near1.npz"], 2, "1 of 40 input rows equal an earlier row"),
    ("pool-near-pilot", [*A2, "--pilot", "{d}/unlab_near.npz"], 2, "estimator's pool"),
    ("pilot-x-1e300", [*A2, "--pilot", "{d}/xhuge.npz"], 2, "x has root-mean-square"),
    ("pilot-x-1e-300", [*A2, "--pilot", "{d}/xtiny.npz"], 2, "x has root-mean-square"),
    ("pilot-y-1e300", [*A2, "--pilot", "{d}/yhuge.npz"], 2, "ys has root-mean-square"),
    ("pilot-y-1e-300", [*A2, "--pilot", "{d}/ytiny.npz"], 2, "ys has root-mean-square"),
    ("pilot-x-1d", [*A2, "--pilot", "{d}/x1d.npz"], 2, "x must have shape (n_p, *input_shape)"),
    ("pilot-unlabeled-shape", [*A2, "--pilot", "{d}/unlab_dim.npz"], 2, "x_unlabeled must have shape (m, 8)"),
    ("pilot-unlabeled-nan", [*A2, "--pilot", "{d}/unlab_nan.npz"], 2, "x_unlabeled must be finite"),
    ("pilot-x-nan", [*A2, "--pilot", "{d}/xnan.npz"], 2, "xnan.npz: x must be finite"),
    ("pilot-y-nan", [*A2, "--pilot", "{d}/ynan.npz"], 2, "ynan.npz: ys must be finite"),
    ("pilot-no-rows", [*A2, "--pilot", "{d}/xempty.npz"], 2, "n_p >= 1"),
    ("pilot-rows-mismatch", [*A2, "--pilot", "{d}/nmismatch.npz"], 2, "every level must have the same shape"),
    ("pilot-output-shapes", [*A2, "--pilot", "{d}/outshape.npz"], 2, "every level must have the same shape"),
    ("pilot-zero-labels", [*A2, "--pilot", "{d}/yzero.npz"], 2, "identically zero"),
    ("pilot-bool-x", [*A2, "--pilot", "{d}/boolx.npz"], 2, "repeat an earlier row"),
    ("pilot-text-x", [*A2, "--pilot", "{d}/strx.npz"], 2, "x must be a numeric array"),
    ("pilot-level0", [*A2, "--pilot", "{d}/level0.npz"], 2, "numbered 1..L without gaps"),
    ("pilot-level01", [*A2, "--pilot", "{d}/level01.npz"], 2, "unknown key(s) ['y_level01', 'y_level02']"),
    ("pilot-no-y", [*A2, "--pilot", "{d}/noy.npz"], 2, "must contain 'x' and 'y_level1'"),
    ("pilot-no-x", [*A2, "--pilot", "{d}/nox.npz"], 2, "must contain 'x' and 'y_level1'"),
    ("pilot-truncated-end", [*A2, "--pilot", "{d}/trunc_end.npz"], 2, "trunc_end.npz is damaged"),
    ("pilot-no-costs", ["allocate", "--budget", "100", "--pilot", "{d}/good.npz"], 2, "--pilot needs --costs"),
    ("pilot-one-row", [*A2, "--pilot", "{d}/one.npz"], 2, "the pilot has 1 inputs; the error model needs at least 10"),
    ("pilot-five-rows", [*A2, "--pilot", "{d}/five.npz"], 2, "the pilot has 5 inputs"),
    # an empty value never silently means "not given" (an unset shell variable)
    ("pilot-empty-string", [*A2, "--pilot", ""], 2, "--pilot is empty"),
    ("costs-empty-string", ["allocate", "--costs", "", "--budget", "100", *POWER_LAW], 2, "--costs is empty"),
    ("problem-empty-string", ["allocate", "--problem", "", "--budget", "100"], 2, "--problem is empty"),
    ("arch-empty-string", [*A2, "--pilot", "{d}/good.npz", "--arch", ""], 2, "--arch is empty"),
    ("out-empty-string", [*ALLOC, *POWER_LAW, "--out", ""], 2, "--out is empty"),
    ("budgets-empty-string", [*CV, "--budgets", "", "--out", "{d}/cv"], 2, "--budgets is empty"),
    ("measured-empty-string", [*CV, "--budgets", "10,100", "--measured", " ", "--out", "{d}/cv"], 2,
     "--measured is empty"),
    # cost tables
    *[(f"cost-table-{name}", _table(name), 2, phrase) for name, phrase in [
        ("empty", "lacks column(s)"), ("header_only", "has no rows"), ("wrong_header", "got lvl,grid,seconds"),
        ("desc_cost", "strictly increasing"), ("equal_cost", "strictly increasing"), ("dup_levels", "duplicated [1]"),
        ("level0", "one row for each level 1..L"), ("level_gap", "missing [2]"),
        ("neg_cost", "neg_cost.csv: cost_seconds must be > 0"), ("zero_cost", "must be > 0"),
        ("nan_cost", "nan_cost.csv: cost_seconds must be finite"), ("inf_cost", "must be finite"),
        ("huge_cost", "between 1e-100 and 1e+100"), ("grid_text", "level and grid must be integers"),
        ("grid_float", "level and grid must be integers"), ("grid_neg", "grid_neg.csv: grid must hold positive integers"),
        ("grid_huge", "grid must be at most"), ("cost_text", "cost_seconds a number"),
        ("semicolon", "got level;grid;cost_seconds"), ("one_level", "(1 levels); got 2 and 2"),
        ("nul", "cost_seconds a number")]],
    ("cost-table-devnull", ["allocate", "--costs", "/dev/null", "--budget", "100", *POWER_LAW], 2, "lacks column(s)"),
    ("cost-table-binary", ["allocate", "--costs", "{d}/good.npz", "--budget", "100", *POWER_LAW], 2, "is not UTF-8"),
    # budgets: numbers that cannot mean anything
    *[(f"budget-{v}", [*ALLOC[:-1], v, *POWER_LAW], 2, phrase) for v, phrase in [
        ("0", "--budget: must be finite and > 0"), ("inf", "must be finite"), ("1e308", "largest count supported"),
        ("1e-300", "minimum budget needed is 2 s"), ("abc", "--budget: must be a number"), ("0x10", "must be a number"),
        ("1e", "must be a number")]],
    ("budget-minus-inf", [*ALLOC[:-1], "-inf", *POWER_LAW], 2, "--budget: expected one argument"),
    # --power-law
    *[(f"power-law-{'_'.join(items)}", [*ALLOC, "--power-law", *items], 2, phrase) for items, phrase in [
        (["coef=0.8,0.2"], "needs both coef"), (["coef=", "exponent=1,1"], "comma-separated numbers"),
        (["coef=a,b", "exponent=1,1"], "coef must be comma-separated numbers"),
        (["coef=0.8,0.2", "exponent=nan,1"], "exponent must be finite"), (["coef=inf,1", "exponent=1,1"], "coef must be finite"),
        (["coef=0.8,0.2", "exponent=1,1", "floor=-1"], "floor must be finite and >= 0"),
        (["coef=0.8,0.2", "exponent=1,1", "floor=nan"], "floor must be finite"),
        (["coef=0.8,0.2", "exponent=1,1", "floor=inf"], "floor must be finite"),
        (["coef=0.8,0.2", "exponent=1,1", "bogus=1"], "got 'bogus=1'"), (["coef", "exponent=1,1"], "got 'coef'"),
        (["coef=0.8,0.2", "exponent=0,0"], "exponent must be > 0"), (["coef=0.8,0.2", "exponent=-1,1"], "exponent must be > 0"),
        (["coef=0,0", "exponent=1,1"], "at least one entry > 0"),
        (["coef=1e-320,1e-320", "exponent=1,1"], "coef must be 0 or between"),
        (["coef=0.8,0.2", "exponent=1e3,1e3"], "exponent must be at most 10"),
        (["coef=0.8,,0.2", "exponent=1,1"], "comma-separated"), (["coef=0.8,0.2", "exponent=1,1,1"], "got 2 and 3")]],
    ("power-law-no-costs", ["allocate", "--budget", "100", *POWER_LAW], 2, "--power-law needs --costs"),
    # other allocate options
    *[(f"allocate{opt}[{v}]", [*ALLOC, *extra, opt, v], 2, phrase) for opt, v, extra, phrase in [
        ("--ridge", "inf", POWER_LAW, "--ridge: must be finite"), ("--ridge", "abc", POWER_LAW, "--ridge: must be a number"),
        ("--pilot-size", "0", [], "--pilot-size/--n-pilot: must be >= 1"),
        ("--pilot-size", "1.5", [], "--pilot-size/--n-pilot: must be an integer"),
        ("--n-unlabeled", "x", [], "--n-unlabeled: must be an integer"), ("--levels", "-1", [], "--levels: must be >= 1"),
        ("--min-samples", "1000000000", POWER_LAW, "minimum budget needed"),
        ("--max-samples", "x", POWER_LAW, "must be an integer"), ("--seed", "1.5", POWER_LAW, "--seed: must be an integer"),
        ("--seed", "abc", POWER_LAW, "--seed: must be an integer"), ("--pilot-size", "1000000000", [], HUGE),
        ("--n-unlabeled", "1000000000", [], HUGE)]],
    ("allocate-levels-vs-table", [*ALLOC, "--problem", "elliptic-rough", "--levels", "3"], 2, "--levels 3 was given"),
    ("allocate-problem-arch", [*ALLOC, "--problem", "elliptic-rough", "--arch", "nope"], 2, "--arch must be one of"),
    ("allocate-out-folder", [*ALLOC, *POWER_LAW, "--out", "{d}/folder.npz"], 2, "is a folder"),
    ("allocate-out-name-too-long", [*ALLOC, *POWER_LAW, "--out", "x" * 300 + ".json"], 2, "File name too long"),
    # curves
    *[(f"curves-budgets[{b}]", [*CV, "--budgets", b, "--out", "{d}/cv"], 2, phrase) for b, phrase in [
        ("a:b:c", "got 'a:b:c'"), ("1:10", "got '1:10'"), ("10:1:5", "0 < START < STOP"), ("10:100:0", "2 <= NUM <= 1000"),
        ("10:100:1", "2 <= NUM"), ("10:100:-3", "2 <= NUM"), ("10:100:100000000", "NUM <= 1000"), ("nan,10", "got 'nan,10'"),
        ("inf", "got 'inf'"), ("0,10", "got '0,10'"), ("10,,20", "got '10,,20'"), ("10:100:2.5", "got '10:100:2.5'"),
        ("10:100:3:4", "got '10:100:3:4'"), ("1e300:1e301:3", "largest count supported"), ("10", "list of 2 to 1000"),
        (":", "got ':'")]],
    ("curves-budgets-negative", [*CV, "--budgets", "-1,10", "--out", "{d}/cv"], 2, "--budgets: expected one argument"),
    *[(f"curves-budget-samples[{b}]", [*CV, "--budget-samples", b, "--out", "{d}/cv"], 2, phrase) for b, phrase in [
        ("0.5,3", "--budget-samples: 1 s is below"), ("1e300,1e301", "largest count supported"),
        ("1:1e20:5", "largest count supported"), ("abc", "finest samples' worth")]],
    *[(f"curves-at[{v}]", [*CV, "--budgets", "10:100:3", "--at", v, "--out", "{d}/cv"], 2, phrase) for v, phrase in [
        ("-1", "--at: must be finite and > 0"), ("nan", "--at: must be finite"), ("0", "--at: must be finite and > 0"),
        ("abc", "--at: must be a number")]],
    *[(f"curves-measured-{name}", [*CV, "--budgets", "10:100:3", "--measured", f"{{d}}/{name}.csv", "--out", "{d}/cv"], 2,
       phrase) for name, phrase in [
        ("meas_alloc", "meas_alloc.csv line 2: allocation must be one of"), ("meas_nan", "meas_nan.csv line 2"),
        ("meas_errnan", "meas_errnan.csv line 2"), ("meas_empty", "has no rows"),
        ("meas_stderr_neg", "meas_stderr_neg.csv line 2"), ("meas_budget_neg", "meas_budget_neg.csv line 2"),
        ("empty", "lacks column(s)")]],
    ("curves-measured-folder", [*CV, "--budgets", "10:100:3", "--measured", "{d}/csvdir", "--out", "{d}/cv"], 2,
     "is a folder"),
    ("curves-max-samples-0", [*CV, "--budgets", "10:100:3", "--max-samples", "0", "--out", "{d}/cv"], 2,
     "--max-samples: must be >= 1"),
    # generate
    *[(f"generate-counts[{c[:24]}]", [*GEN, "--counts", c], 2, phrase) for c, phrase in [
        ("0", "must be >= 1"), ("0,0", "must be >= 1"), ("-1", "must be >= 1"), ("1.5", "comma-separated integers"),
        ("1e3", "comma-separated integers"), ("1,2,", "comma-separated integers"), ("a", "comma-separated integers"),
        ("100000000000", HUGE)]],
    ("generate-levels-vs-counts", [*GEN, "--counts", "1,2", "--levels", "3"], 2, "one sample count per level"),
    *[(f"generate{opt}[{v}]", [*GEN, "--counts", "2,2", *extra, opt, v], 2, phrase) for opt, v, extra, phrase in [
        ("--levels", "0", [], "--levels: must be >= 1"), ("--levels", "x", [], "--levels: must be an integer"),
        ("--n-unlabeled", "x", ["--paired"], "must be an integer"), ("--workers", "0", [], "--workers: must be >= 1"),
        ("--workers", "-1", [], "--workers: must be >= 1"), ("--chunk-size", "0", [], "--chunk-size: must be >= 1"),
        ("--param", "n_coarse=0", [], "n_coarse"), ("--param", "n_coarse=-1", [], "n_coarse"),
        ("--param", "n_coarse=1000000000", [], "unknowns"),
        ("--param", "n_coarse=nan", [], "--param n_coarse must be an integer"),
        ("--param", "=1", [], "KEY=VALUE"), ("--param", "n_coarse", [], "KEY=VALUE"),
        ("--problem", "nope", [], "available problems")]],
    ("generate-n-unlabeled-huge", [*GEN, "--counts", "2,2", "--paired", "--n-unlabeled", "100000000000"], 2, HUGE),
    # costs
    *[(f"costs{opt}[{v}]", ["costs", "--out", "{d}/k.csv", opt, v], 2, phrase) for opt, v, phrase in [
        ("--repeats", "0", "--repeats: must be >= 1"), ("--repeats", "-1", "--repeats: must be >= 1"),
        ("--samples", "0", "--samples: must be >= 1"), ("--max-batch-time", "0", "--max-batch-time: must be finite and > 0"),
        ("--max-batch-time", "nan", "must be finite"), ("--levels", "0", "--levels: must be >= 1")]],
    ("costs-out-folder", ["costs", "--out", "{d}"], 2, "is a folder"),
    # validate: every option checked before costs are measured or a network trained
    *[(f"validate{opt}[{v[:16]}]", [*VAL, opt, v], 2, phrase) for opt, v, phrase in [
        ("--widths", "0", "--widths must be >= 1"), ("--widths", "-5", "--widths must be >= 1"),
        ("--widths", "1000000000", HUGE), ("--optimizer", "nope", "--optimizer must be one of"),
        ("--rtol", "-1", "--rtol: must be finite and >= 0"), ("--rtol", "nan", "--rtol: must be finite"),
        ("--ridge", "nan", "--ridge: must be finite"), ("--n-pilot", "0", "--pilot-size/--n-pilot: must be >= 1"),
        ("--pilot-size", "0", "--pilot-size/--n-pilot: must be >= 1"),
        ("--budget", "0", "--budget must be finite and > 0"), ("--budget", "nan", "--budget must be finite"),
        ("--budget", "a", "--budget must be a comma-separated list"), ("--allocations", ",", "need at least one value"),
        ("--arch", "nope", "--arch must be one of"), ("--budget", "1e300", "largest count supported"),
        ("--n-test", "100000000000", HUGE), ("--power-law", "coef=1", "needs both coef")]],
    ("validate-cache-dir-a-file", [*VAL, "--cache-dir", "{d}/afile"], 2, "--cache-dir {d}/afile is an existing file"),
    ("validate-checkpoint-dir-a-file", [*VAL, "--checkpoint-dir", "{d}/afile"], 2, "--checkpoint-dir"),
    ("generate-cache-a-file", [*GEN, "--counts", "2,2", "--cache", "{d}/afile"], 2, "--cache {d}/afile is an existing file"),
    ("validate-power-law-levels", [*VAL, "--power-law", "coef=1,1,1", "exponent=1,1,1"], 2, "got 3 and 3"),
    # demo
    *[(f"demo{opt}[{v[:12]}]", [*DEMO, opt, v], 2, phrase) for opt, v, phrase in [
        ("--problem", "nope", "available problems"), ("--levels", "0", "--levels: must be >= 1"),
        ("--levels", "100", "at most 8 levels"), ("--arch", "nope", "(--arch) must be one of"),
        ("--pilot-size", "0", "--pilot-size/--n-pilot: must be >= 1"),
        ("--n-unlabeled", "0", "--n-unlabeled must be >= 1 for the demo"),
        ("--check-size", "0", "--check-size: must be >= 1"), ("--n-budgets", "1", "--n-budgets: must be >= 2"),
        ("--pilot-size", "1000000000", HUGE), ("--n-unlabeled", "1000000000", HUGE),
        ("--check-size", "1000000000", HUGE)]],
    # transfer scaling
    *[(f"transfer{opt}[{v}]", [*TR, opt, v], 2, phrase) for opt, v, phrase in [
        ("--system", "nope", "invalid choice"), ("--source-range", "a", "--source-range"),
        ("--source-range", "2,1", "--source-range"), ("--n-source-pool", "0", "--n-source-pool: must be >= 1"),
        ("--n-pre", "-1", "--n-pre: must be >= 1"), ("--n-down", "a", "--n-down"), ("--costs", "1", "--costs"),
        ("--costs", "1,0", "costs must be > 0"), ("--costs", "-1,1", "--costs"),
        ("--target-error", "-1", "--target-error: must be finite and > 0"), ("--target-error", "nan", "--target-error"),
        ("--size", "0", "--size: must be >= 1"), ("--ridge", "nan", "--ridge: must be finite"),
        ("--architecture", "nope", "must be one of"), ("--arch", "nope", "must be one of"), ("--budgets", "nan", "--budgets"),
        ("--target-ranges", "1", "--target-ranges"), ("--n-pre-grid", "a,b", "--n-pre-grid"),
        ("--grid", "100", "invalid choice")]],
    # the top level
    ("no-command", [], 2, "the following arguments are required: COMMAND"),
    ("unknown-command", ["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    ("unknown-option", ["demo", "--bogus"], 2, "unrecognized arguments: --bogus"),
    ("transfer-no-subcommand", ["transfer"], 2, "SUBCOMMAND"),
]


# Cases that first measure costs (seconds to a minute): the slow tier.
SLOW_CASES = [
    ("demo-budget-samples-1e20", [*DEMO, "--budget-samples", "100000000000000000000"], 2,
     "buys 1e+20 finest-level samples"),
]


def _argv(argv, d):
    return [a.replace("{d}", str(d)) for a in argv]


def _main(argv):
    """Exit status of ``ntk-mlft ARGV`` (argparse's own errors exit through SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch):
    monkeypatch.setenv("NTK_MLFT_PROGRESS", "0")


@pytest.mark.parametrize("argv, status, phrase", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_one_clear_line(files, capsys, argv, status, phrase):
    """One line ``ntk-mlft COMMAND: error: ...`` (after argparse's usage lines where argparse found
    it while parsing), the phrase, the exit status, nothing on stdout."""
    assert _main(_argv(argv, files)) == status
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert "Traceback" not in captured.err and lines, captured.err
    assert not [line for line in lines[:-1] if not line.startswith(("usage:", " "))], captured.err
    assert lines[-1].startswith("ntk-mlft") and ": error: " in lines[-1], captured.err
    assert phrase.replace("{d}", str(files)) in lines[-1], lines[-1]
    assert captured.out == ""


@pytest.mark.slow
@pytest.mark.parametrize("argv, status, phrase", [c[1:] for c in SLOW_CASES], ids=[c[0] for c in SLOW_CASES])
def test_bad_input_one_clear_line_after_costs(files, capsys, argv, status, phrase):
    test_bad_input_one_clear_line(files, capsys, argv, status, phrase)


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


def test_an_interrupt_swallowed_by_a_gc_callback_still_ends_the_command():
    """Ctrl-C landing in a ``__del__`` or garbage-collector callback (JAX registers one) is
    "ignored" by Python -- a traceback printed, the command running on; ``main`` redelivers it."""
    import time

    from ntk_mlft.cli._errors import interrupts_get_through

    class InterruptedWhileCollected:
        def __del__(self):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), interrupts_get_through():
        InterruptedWhileCollected()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:  # the redelivery comes within 10 ms
            time.sleep(0.001)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.2, 1.0, 2.0, 4.0, 8.0, 14.0])
def test_ctrl_c_anywhere_prints_one_line(files, delay):
    """A real SIGINT to the whole process group (what a terminal's Ctrl-C sends) at several points of
    a data-generation run with worker processes: exit 130 and one line, or exit 0 if it had
    already finished -- never a traceback."""
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "NTK_MLFT_PROGRESS": "0", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "ntk_mlft.cli", "generate", "--counts", "400,400", "--workers", "2",
                             "--out", str(files / f"sigint-{delay}")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    if proc.returncode != 0:
        assert proc.returncode == 130
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ntk-mlft") and "interrupted (Ctrl-C)" in lines[0], err


def test_seed_makes_an_estimator_run_reproducible(files, tmp_path, capsys):
    """With the cost table from a file (measured costs are timings: README, "Reproducibility"), the
    same --seed gives the same report, bit for bit (the pilot estimator's bootstrap included)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 4))
    y1 = np.sin(x[:, :1])
    np.savez(tmp_path / "pilot.npz", x=x, y_level1=y1, y_level2=y1 + 0.1 * x[:, 1:2],
             x_unlabeled=rng.normal(size=(60, 4)))
    argv = ["allocate", "--costs", str(files / "costs.csv"), "--budget", "100", "--pilot", str(tmp_path / "pilot.npz"),
            "--json", "--seed", "5"]
    reports = []
    for _ in range(2):
        assert main(argv) == 0
        reports.append(capsys.readouterr().out)
    assert reports[0] == reports[1] and _strict_load(reports[0])["optimal"]["predicted_error"] > 0
