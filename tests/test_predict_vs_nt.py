"""``ntk_mlft.predict`` equals ``neural_tangents.predict`` 0.6.5 (fixtures in ``tests/fixtures/``).

``gradient_descent_mse``: train and test outputs at finite t (one by one and as an array of
times) and t = inf, without and with ``diag_reg`` and a non-unit learning rate, from non-zero
initial outputs. ``gradient_descent_mse_ensemble``: mean and covariance of the NNGP and NTK
ensembles on a test set and on the training set, at several t and t = inf. The ensemble uses our
own ``stax`` kernel of the fixture architecture (itself checked against NT in
``test_stax_vs_nt.py``), so this is an end-to-end comparison. Relative error <= 1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest
from nt_fixtures import build, load, rel_err, spec_of

from ntk_mlft import predict

# module-scoped fixtures are computed once per xdist worker: keep this file on one worker

TOL = 1e-10
DATA = load("nt_predict.npz")
TIMES = [float(t) for t in DATA["times"]]
TAGS = ("plain", "reg")


@pytest.fixture(scope="module")
def kernel_fn():
    return build(spec_of(DATA, ""))[2]


def test_our_kernel_is_nts(kernel_fn):
    k = kernel_fn(DATA["x_train"], None, get="ntk")
    assert rel_err(k, DATA["k_train_train"]) <= TOL
    assert rel_err(kernel_fn(DATA["x_test"], DATA["x_train"], get="ntk"),
                   DATA["k_test_train"]) <= TOL


@pytest.mark.parametrize("tag", TAGS)
def test_gradient_descent_mse(tag):
    pre = f"gd_{tag}__"
    predict_fn = predict.gradient_descent_mse(DATA["k_train_train"], DATA["y_train"],
                                              learning_rate=float(DATA[pre + "lr"]),
                                              diag_reg=float(DATA[pre + "diag_reg"]))
    args = (DATA["fx_train_0"], DATA["fx_test_0"], DATA["k_test_train"])
    for i, t in enumerate(TIMES + [None]):
        key = "inf" if t is None else str(i)
        train, test = predict_fn(t, *args)
        assert rel_err(train, DATA[f"{pre}train_t{key}"]) <= TOL, (tag, t)
        assert rel_err(test, DATA[f"{pre}test_t{key}"]) <= TOL, (tag, t)
    train, test = predict_fn(np.array(TIMES), *args)
    assert rel_err(train, DATA[pre + "train_all"]) <= TOL
    assert rel_err(test, DATA[pre + "test_all"]) <= TOL


@pytest.mark.parametrize("tag", TAGS)
def test_gradient_descent_mse_ensemble(tag, kernel_fn):
    pre = f"ens_{tag}__"
    predict_fn = predict.gradient_descent_mse_ensemble(
        kernel_fn, DATA["x_train"], DATA["y_train"],
        learning_rate=float(DATA[f"gd_{tag}__lr"]), diag_reg=float(DATA[f"gd_{tag}__diag_reg"]))
    for i, t in enumerate(TIMES[1:] + [None]):
        key = "inf" if t is None else str(i + 1)
        res = predict_fn(t, DATA["x_test"], ("nngp", "ntk"), compute_cov=True)
        for g in ("nngp", "ntk"):
            assert rel_err(res[g].mean, DATA[f"{pre}{g}_mean_t{key}"]) <= TOL, (tag, g, t)
            assert rel_err(res[g].covariance, DATA[f"{pre}{g}_cov_t{key}"]) <= TOL, (tag, g, t)
        train = predict_fn(t, None, "ntk", compute_cov=True)
        assert rel_err(train.mean, DATA[f"{pre}train_ntk_mean_t{key}"]) <= TOL, (tag, t)
        # NT's train-set covariance at t = inf is ~1e-16 (interpolation): compare absolutely
        # against the scale of the prior covariance there.
        cov_ref = DATA[f"{pre}train_ntk_cov_t{key}"]
        scale = np.max(np.abs(kernel_fn(DATA["x_train"], None, get="nngp")))
        assert np.max(np.abs(train.covariance - cov_ref)) <= TOL * scale, (tag, t)
