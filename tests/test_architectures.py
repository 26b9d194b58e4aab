"""Named architectures: registry, shapes of the finite network and of the kernel, and that the
kernel is the infinite-width limit of the same finite network (NNGP by Monte-Carlo)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ntk_mlft.architectures import Architecture, available_architectures, get_architecture


def test_registry_lists_required_names():
    assert {"mlp-relu-3", "mlp-erf-2", "cnn-relu-2"} <= set(available_architectures())


@pytest.mark.parametrize("name", ["mlp-relu-3", "mlp-erf-2", "cnn-relu-2"])
def test_shapes(rng, name):
    arch = get_architecture(name, output_dim=5, width=16)
    assert isinstance(arch, Architecture) and arch.name == name and arch.description
    x = rng.normal(size=(3, 8, 1))
    out_shape, params = arch.init_fn(jax.random.key(0), x.shape)
    assert tuple(out_shape) == (3, 5)
    assert arch.apply_fn(params, x).shape == (3, 5)
    k = arch.kernel_fn(x, x[:2])
    assert k.nngp.shape == (3, 2) and k.ntk.shape == (3, 2)
    assert np.all(np.isfinite(k.ntk))


def test_bad_options():
    with pytest.raises(ValueError, match=r"architecture \(--arch\) must be one of"):
        get_architecture("resnet", output_dim=1)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['depth'\]"):
        get_architecture("mlp-relu-3", output_dim=1, depth=4)
    with pytest.raises(ValueError, match="output_dim must be >= 1"):
        get_architecture("mlp-relu-3", output_dim=0)


def test_mlp_nngp_is_limit_of_finite_outputs(rng):
    """Sample outputs of many random wide networks: their covariance -> analytic NNGP."""
    arch = get_architecture("mlp-erf-2", output_dim=64, width=1024)
    x = rng.normal(size=(3, 4))
    outs = []
    for seed in range(8):
        _, params = arch.init_fn(jax.random.key(seed), x.shape)
        outs.append(np.asarray(arch.apply_fn(params, x)))
    f = np.concatenate(outs, axis=1)  # (3, 512) samples of the 3 outputs
    emp = f @ f.T / f.shape[1]
    nngp = np.asarray(arch.kernel_fn(x, get="nngp"))
    assert np.linalg.norm(emp - nngp) / np.linalg.norm(nngp) < 0.15
