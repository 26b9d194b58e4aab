"""``ntk_mlft.kernels.batch`` against the unbatched kernel (same numbers, any block size)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import tol

from ntk_mlft import stax
from ntk_mlft.kernels import Kernel, batch


def _kernel_fn():
    return stax.serial(stax.Dense(16, W_std=1.5, b_std=0.1), stax.Relu(),
                       stax.Dense(16, W_std=1.5, b_std=0.1), stax.Erf(), stax.Dense(1))[2]


@pytest.mark.parametrize("batch_size", [1, 3, 7, 50])
def test_blocks_equal_full_computation(rng, batch_size):
    kernel_fn = _kernel_fn()
    x1, x2 = rng.normal(size=(11, 4)), rng.normal(size=(6, 4))
    full = kernel_fn(x1, x2)
    got = batch(kernel_fn, batch_size)(x1, x2)
    assert isinstance(got, Kernel) and isinstance(got.ntk, np.ndarray)
    for name in ("nngp", "ntk", "cov1", "cov2"):
        np.testing.assert_allclose(getattr(got, name), getattr(full, name), rtol=tol(np.float64))


def test_symmetric_uses_blocks_and_mirrors(rng):
    kernel_fn = _kernel_fn()
    x = rng.normal(size=(10, 4))
    full = kernel_fn(x, get=("nngp", "ntk"))
    got = batch(kernel_fn, 4)(x, get=("nngp", "ntk"))
    for name in ("nngp", "ntk"):
        a, b = getattr(got, name), getattr(full, name)
        np.testing.assert_allclose(a, b, rtol=tol(np.float64))
        np.testing.assert_array_equal(a, a.T)
    ntk_only = batch(kernel_fn, 4, store_on_device=True)(x, get="ntk")
    np.testing.assert_allclose(np.asarray(ntk_only), got.ntk, rtol=tol(np.float64))
    assert batch(kernel_fn, 4)(x).cov2 is None


def test_bad_arguments():
    kernel_fn = _kernel_fn()
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        batch(kernel_fn, 0)
    with pytest.raises(TypeError, match="kernel_fn must be a kernel_fn from ntk_mlft.stax"):
        batch(lambda a, b: a, 4)
    with pytest.raises(ValueError, match="get must be None or names from"):
        batch(kernel_fn, 4)(np.ones((3, 4)), get="shape1")
    with pytest.raises(ValueError, match="x1 and x2 must have the same shape"):
        batch(kernel_fn, 4)(np.ones((3, 4)), np.ones((3, 5)))


def test_blocks_spread_over_two_cpu_devices():
    """With two (virtual) CPU devices blocks run on both and give the same matrix."""
    code = (
        "import jax, numpy as np\n"
        "jax.config.update('jax_enable_x64', True)\n"
        "assert len(jax.local_devices()) == 2\n"
        "from ntk_mlft import stax\n"
        "from ntk_mlft.kernels import batch\n"
        "kf = stax.serial(stax.Dense(4, 1.5, 0.1), stax.Relu(), stax.Dense(1))[2]\n"
        "x = np.random.default_rng(0).normal(size=(9, 3))\n"
        "y = np.random.default_rng(1).normal(size=(7, 3))\n"
        "got = batch(kf, 2)(x, y, get='ntk')\n"
        "ref = np.asarray(kf(x, y, get='ntk'))\n"
        "print(float(np.max(np.abs(got - ref) / np.abs(ref))))\n"
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip()) <= tol(np.float64)


def test_kernel_blocks_stream_equals_full_kernel():
    """Row blocks of ``kernel_blocks`` tile the full kernel exactly (ragged last block too)."""
    from ntk_mlft.kernels import kernel_blocks

    _, _, kernel_fn = stax.serial(stax.Dense(64), stax.Relu(), stax.Dense(1))
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=(23, 5)), rng.normal(size=(7, 5))
    full = np.asarray(kernel_fn(x1, x2, get="ntk"))
    got = np.zeros_like(full)
    starts = []
    for start, blk in kernel_blocks(kernel_fn, x1, x2, block=10):
        assert blk.dtype == np.float64 and blk.shape[1] == 7
        got[start:start + blk.shape[0]] = blk
        starts.append(start)
    assert starts == [0, 10, 20]
    np.testing.assert_allclose(got, full, rtol=1e-12, atol=0)
    sym = np.concatenate([b for _, b in kernel_blocks(kernel_fn, x1, block=8, get="nngp")])
    np.testing.assert_allclose(sym, np.asarray(kernel_fn(x1, None, get="nngp")), rtol=1e-12, atol=1e-14)
