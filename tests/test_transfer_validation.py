"""Trained-CNN validation of the transfer prediction: rows, checkpoint resume (slow: trains
networks), and the aggregation of rows into measured points (fast)."""

import numpy as np
import pytest

from ntk_mlft.transfer.validation import TransferRow, cnn2d, measured_points, validate_transfer


def test_measured_points_mean_and_stderr_over_seeds():
    rows = [TransferRow("a", "finetune", 32, s, 10, 8, v, 0.1, 0.2, 1.0, 5) for s, v in ((0, 0.1), (1, 0.3))]
    (p,) = measured_points(rows)
    assert p["mean"] == pytest.approx(0.2) and p["stderr"] == pytest.approx(0.1) and p["seeds"] == 2


@pytest.mark.slow  # ~7 s
def test_cnn_kernel_is_the_infinite_width_limit_of_its_network():
    import jax

    arch = cnn2d(1, 4)
    x = np.random.default_rng(0).normal(size=(3, 4, 4, 7))
    k = np.asarray(arch.kernel_fn(x, None, get="nngp"))
    outs = []
    for seed in range(32):
        net = cnn2d(64, 4)
        _, p = net.init_fn(jax.random.key(seed), (-1, 4, 4, 7))
        outs.append(np.asarray(net.apply_fn(p, x)))
    emp = np.einsum("sio,sjo->ij", np.stack(outs), np.stack(outs)) / (32 * 16)
    np.testing.assert_allclose(emp, k, rtol=0.25, atol=0.06 * np.abs(k).max())


@pytest.mark.slow
def test_validate_transfer_rows_and_resume(tmp_path):
    from ntk_mlft.transfer.study import default_targets

    source, targets = default_targets("poisson-aniso-2d", n_coarse=16, n_input=16, n_output=16)
    kwargs = dict(widths=(8,), seeds=(0,), n_pre=8, n_down=(4,), n_pool=24, size=4, max_steps=25,
                  cache_dir=tmp_path / "c", checkpoint=tmp_path / "ck.json")
    studies, rows = validate_transfer(source, targets[:1], **kwargs)
    assert {(r.mode, r.n_down) for r in rows} == {("finetune", 4), ("scratch", 4)}
    assert all(np.isfinite(r.measured) and r.measured > 0 and r.ntk_limit > 0 for r in rows)
    assert len(studies[0].curves) == 1
    again = validate_transfer(source, targets[:1], **kwargs)[1]   # resumed: nothing retrained
    assert again == rows
