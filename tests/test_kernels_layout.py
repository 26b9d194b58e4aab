"""``ntk_mlft.kernels._layout``: symmetric block packing and rows sharded over devices.

Oracles: the neural-tangents 0.6.5 fixtures (``tests/fixtures/nt_stax.npz``) for the packed
kernel, and the one-device computation for the 2-device run (a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=2``; the flag must be set before JAX starts).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from nt_fixtures import build, load, rel_err, spec_of

from ntk_mlft import stax
from ntk_mlft.kernels import _layout, kernel_blocks

DATA = load("nt_stax.npz")
TOL = 1e-10
RELU_DIAG_TOL = 1e-7  # NT's own rounding noise on the ReLU x2=None diagonal (test_stax_vs_nt)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("case", ["dense_standard_W0.7_b0.3", "conv1d_gap_standard",
                                  "resnet_conv1d"])
def test_packed_kernel_matches_nt_fixtures(case, monkeypatch):
    """Forced packing (blocks of 2 rows, padding included) on the stacked ``[x1; x2]``."""
    monkeypatch.setattr(_layout, "MIN_BLOCK", 2)
    pre = case + "__"
    x1, x2 = DATA[pre + "x1"], DATA[pre + "x2"]
    stacked = np.concatenate([x1, x2])
    if len(stacked) % 2 == 0:  # odd N = 2m + 1: m blocks of 3 rows, the last one padded
        stacked = np.concatenate([stacked, x1[:1]])
    total, n, n2 = len(stacked), len(x1), len(x2)
    kernel_fn = build(spec_of(DATA, pre))[2]
    assert _layout.make_plan(total, True, True).n_blocks == total // 2
    k = kernel_fn(stacked, None)
    assert k.nngp.shape == (total, total) and k.cov2 is None and k.shape1 == k.shape2
    for g in ("nngp", "ntk"):
        full = np.asarray(getattr(k, g))
        np.testing.assert_allclose(full, full.T, rtol=1e-14, atol=0)
        assert rel_err(full[:n, n:n + n2], DATA[f"{pre}{g}_12"]) <= TOL, (case, g)
        ref = DATA[f"{pre}{g}_11"]
        err = np.abs(full[:n, :n] - ref) / np.max(np.abs(ref))
        off = ~np.eye(n, dtype=bool)
        assert np.max(err[off]) <= TOL, (case, g)
        assert np.max(err[~off]) <= RELU_DIAG_TOL, (case, g)
    np.testing.assert_allclose(np.asarray(k.cov1), np.diag(np.asarray(k.nngp)), rtol=1e-14)


def test_packing_is_chosen_only_for_symmetric_flat_outputs():
    assert _layout.make_plan(2000, True, True, devices=[0]).n_blocks == _layout.MAX_BLOCKS
    assert _layout.make_plan(5000, True, True, devices=[0]).n_blocks == 1  # > MAX_PACKED_ROWS
    assert _layout.make_plan(100, True, True, devices=[0]).n_blocks == 100 // _layout.MIN_BLOCK
    assert _layout.make_plan(5000, False, True, devices=[0]).n_blocks == 1
    assert _layout.make_plan(5000, True, False, devices=[0]).n_blocks == 1
    assert _layout.make_plan(20, True, True, devices=[0]).n_blocks == 1


_TWO_DEVICES = textwrap.dedent("""
    import sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from ntk_mlft.kernels import _layout
    sys.path.insert(0, {tests!r})
    from test_kernels_layout import compute
    _layout.MIN_BLOCK = 8
    assert len(jax.devices()) == 2, jax.devices()
    assert _layout.make_plan(71, True, True).mesh is not None   # the sharded path runs
    assert _layout.make_plan(7, False, True).mesh is not None
    np.savez({out!r}, **compute())
""")


def compute() -> dict:
    """Kernels through every sharded entry point, on row counts 2 does not divide (call with
    ``_layout.MIN_BLOCK = 8``, so the 71 rows are packed in 2 blocks)."""
    rng = np.random.default_rng(0)
    kernel_fn = stax.serial(stax.Conv(8, (3,), padding="SAME", W_std=1.5, b_std=0.05),
                            stax.Relu(), stax.Flatten(), stax.Dense(1))[2]
    x, x2 = rng.normal(size=(71, 9, 2)), rng.normal(size=(13, 9, 2))
    sym, cross = kernel_fn(x, None), kernel_fn(x[:7], x2)
    out = {f"sym_{g}": getattr(sym, g) for g in ("nngp", "ntk", "cov1")}
    out.update({f"x2_{g}": getattr(cross, g) for g in ("nngp", "ntk", "cov1", "cov2")})
    out["blocks"] = np.concatenate([b for _, b in kernel_blocks(kernel_fn, x[:21], x2, 7)])
    return {k: np.asarray(v) for k, v in out.items()}


def test_two_cpu_devices_equal_one_device(tmp_path, monkeypatch):
    monkeypatch.setattr(_layout, "MIN_BLOCK", 8)
    out = tmp_path / "two.npz"
    script = _TWO_DEVICES.format(tests=os.path.join(ROOT, "tests"), out=str(out))
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = compute()
    with np.load(out) as two:
        assert set(two.files) == set(one)
        for key, ref in one.items():
            assert two[key].shape == ref.shape, key
            # the same program per block; XLA's shape-dependent vectorisation may round the
            # last bit differently (measured <= 2 ulp)
            assert rel_err(two[key], ref) <= 1e-14, key
