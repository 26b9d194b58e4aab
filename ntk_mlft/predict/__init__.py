"""Predictions of networks trained by gradient flow on MSE, in the kernel regime.

``gradient_flow``: one level (neural-tangents ``predict`` compatible: mean and covariance of the
trained ensemble at time t or t = inf); ``multilevel``: MLFT as chained kernel regression, each
level fitted to the residual of the previous ones.
"""

from ntk_mlft.predict.gradient_flow import Gaussian as Gaussian
from ntk_mlft.predict.gradient_flow import gradient_descent_mse as gradient_descent_mse
from ntk_mlft.predict.gradient_flow import gradient_descent_mse_ensemble as gradient_descent_mse_ensemble
from ntk_mlft.predict.multilevel import chained_regression as chained_regression
from ntk_mlft.predict.multilevel import mlft_predict as mlft_predict

__all__ = ["Gaussian", "chained_regression", "gradient_descent_mse", "gradient_descent_mse_ensemble",
           "mlft_predict"]
