"""Top modes of the diagonal-normalised kernel on a large pool, from streamed kernel blocks.

Contract: the pool has M points; ``diag`` (M,) holds K(x, x) > 0; ``blocks`` yields
``(start, K[start:start + b, Z])`` row blocks of the raw kernel against m landmark points
``Z = pool[landmarks]`` (``kernels.kernel_blocks(kernel_fn, x, x[landmarks])``, any block size,
rows in order). ``nystrom_modes`` returns the top ``rank`` eigenpairs of the Nyström
approximation K_hat ~ C W^+ C^T of K_hat = Omega^{-1/2} K Omega^{-1/2} (C = K_hat(X, Z),
W = K_hat(Z, Z)), as eigenvalues eta of K_hat / M, the eigenvectors at the requested rows and
W_modes = V^T Omega V, plus the exact eigenvalue mass beyond ``rank`` (the trace of K_hat / M is
mean K(x, x), known). One pass over the blocks accumulating the (m, m) matrices C^T C and
C^T Omega C: memory O(m^2 + b m), never (M, M) nor (M, m); cost M m (kernel entries) +
2 M m^2 flops + O(m^3).

``power_law_tail`` is the tail model for the modes beyond the computed rank. Derivation:
``docs/theory.md`` section 10 (large-pool spectrum and tail model).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["NystromModes", "PowerLawTail", "TailWarning", "nystrom_memory", "nystrom_modes",
           "power_law_tail"]


class TailWarning(UserWarning):
    """The tail model of a large-pool spectrum is poorly determined or dominates a prediction."""


@dataclass(frozen=True)
class NystromModes:
    """eta (r,) eigenvalues of K_hat / M, descending; vectors (n_rows, r): orthonormal pool
    eigenvectors V at the requested rows (phi = sqrt(M) V); w_modes (r, r) = V^T Omega V;
    omega (M,) diagonal weights K(x, x) / mean K(x, x); tail_mass: sum of the eigenvalues of
    K_hat / M beyond rank r (= mean K(x, x) - sum eta, exact up to the Nyström error of the top
    modes); n_landmarks: m."""

    eta: np.ndarray
    vectors: np.ndarray
    w_modes: np.ndarray
    omega: np.ndarray
    tail_mass: float
    n_landmarks: int

    @property
    def size(self) -> int:
        return int(self.omega.size)


def nystrom_memory(size: int, n_landmarks: int, block: int, n_rows: int) -> int:
    """Peak bytes ``nystrom_modes`` needs: four (m, m) float64 matrices (C^T C, C^T Omega C and
    two eigen-decomposition work arrays), one (b, m) block twice, the (n_rows, m) kept rows and
    three (M,) vectors."""
    m = int(n_landmarks)
    return 8 * (4 * m * m + 2 * int(block) * m + int(n_rows) * m + 3 * int(size))


def nystrom_modes(blocks: Iterable[tuple[int, np.ndarray]], diag: np.ndarray,
                  landmarks: np.ndarray, rank: int, rows: np.ndarray,
                  rcond: float = 1e-10) -> NystromModes:
    """Top ``rank`` modes of the Nyström approximation (module docstring).

    diag (M,) K(x, x) > 0; landmarks (m,) distinct pool indices, m >= rank; rows (n_rows,)
    pool indices whose eigenvector entries are returned; blocks: row blocks (b, m) of
    K(pool, pool[landmarks]) covering rows 0..M-1 in order. ``rcond``: eigenvalues of W below
    rcond x its largest are dropped (numerical rank of the landmark kernel); the returned
    rank is min(rank, that numerical rank). Raises ValueError on inconsistent inputs.
    """
    diag = np.asarray(diag, dtype=np.float64)
    size = diag.size
    landmarks = np.asarray(landmarks, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    m = landmarks.size
    if not 1 <= rank <= m:
        raise ValueError(f"rank must be in 1..{m} (the number of landmarks); got {rank}")
    if np.any(diag <= 0) or not np.all(np.isfinite(diag)):
        i = int(np.argmin(np.where(np.isfinite(diag), diag, -np.inf)))
        raise ValueError(f"diagonal normalisation needs finite K(x, x) > 0 for every pool point; "
                         f"entry {i} is {diag[i]:.3e}")
    omega = diag / diag.mean()
    root = np.sqrt(omega)
    gram = np.zeros((m, m))
    gram_w = np.zeros((m, m))
    w_land = np.empty((m, m))
    kept = np.empty((rows.size, m))
    pos_land = np.full(size, -1)
    pos_land[landmarks] = np.arange(m)
    pos_rows = np.full(size, -1)
    pos_rows[rows] = np.arange(rows.size)
    root_z = root[landmarks]
    done = 0
    for start, block in blocks:
        block = np.asarray(block, dtype=np.float64)
        if start != done or block.ndim != 2 or block.shape[1] != m:
            raise ValueError(f"blocks: expected the row block starting at {done} with {m} columns; "
                             f"got start {start}, shape {block.shape}")
        stop = start + block.shape[0]
        if stop > size:
            raise ValueError(f"blocks: rows beyond the pool size {size}")
        if not np.all(np.isfinite(block)):
            raise ValueError(f"blocks: kernel rows {start}..{stop - 1} contain NaN/inf")
        c = block / (root[start:stop, None] * root_z[None, :])      # K_hat(X_b, Z)
        gram += c.T @ c
        gram_w += c.T @ (c * omega[start:stop, None])
        sel = pos_land[start:stop]
        w_land[sel[sel >= 0]] = c[sel >= 0]
        sel = pos_rows[start:stop]
        kept[sel[sel >= 0]] = c[sel >= 0]
        done = stop
    if done != size:
        raise ValueError(f"blocks covered rows 0..{done - 1}; the pool has {size}")
    w_land = 0.5 * (w_land + w_land.T)
    s, u = np.linalg.eigh(w_land)
    keep = s > rcond * s[-1]
    r_mat = u[:, keep] / np.sqrt(s[keep])                          # W^{+1/2} (m, k)
    lam, q = np.linalg.eigh(r_mat.T @ gram @ r_mat)                # B^T B, B = C W^{+1/2}
    lam, q = lam[::-1], q[:, ::-1]
    rank = min(rank, int(np.sum(lam > rcond * lam[0])))
    lam, q = lam[:rank], q[:, :rank]
    proj = r_mat @ (q / np.sqrt(lam))                              # V = C proj (m, r)
    eta = lam / size
    return NystromModes(eta=eta, vectors=kept @ proj, w_modes=proj.T @ gram_w @ proj,
                        omega=omega, tail_mass=max(float(diag.mean()) - float(eta.sum()), 0.0),
                        n_landmarks=m)


def _tail_sum(eta0: float, k0: int, size: int, alpha: float) -> float:
    """sum_{k = k0 + 1}^{size} eta0 (k / k0)^(-alpha), by the integral over (k0 + 1/2, size + 1/2]."""
    a, b = (k0 + 0.5) / k0, (size + 0.5) / k0
    if abs(alpha - 1) < 1e-9:
        return eta0 * k0 * float(np.log(b / a))
    return eta0 * k0 * float((b ** (1 - alpha) - a ** (1 - alpha)) / (1 - alpha))


@dataclass(frozen=True)
class PowerLawTail:
    """Tail model eta_k = eta_k0 (k / k0)^(-alpha) for ranks k0 < k <= size (k0 = ``rank``, the
    last computed mode kept), ``alpha`` chosen so the tail holds ``mass``, the exact trace
    remainder beyond k0 (docs/theory.md section 10). ``alpha_slope``: the log-log slope of the
    computed eigenvalues over ranks [fit_lo, rank] (validation: close to alpha when the top
    modes are accurate and the decay is a power law); ``fit_rms``: rms log residual of that slope
    fit; ``power_exponent``: gamma, the tail's target power per mode is taken proportional to
    eta^gamma (``_tail_entries``).

    ``bands(ratio)``: the tail as entries for ``SpectralEstimator`` (mult > 1): rank bands
    (k_b, k_{b+1}] growing by ``ratio``, each with its mean eigenvalue and width."""

    rank: int
    size: int
    eta_last: float
    alpha: float
    mass: float
    alpha_slope: float
    fit_lo: int
    fit_rms: float
    power_exponent: float = 1.0

    def bands(self, ratio: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
        """(eta_b, mult_b) of the tail bands; sum mult_b eta_b = mass, sum mult_b = size - rank."""
        if self.size <= self.rank or self.mass <= 0:
            return np.zeros(0), np.zeros(0)
        edges = [self.rank]
        while edges[-1] < self.size:
            edges.append(min(self.size, max(edges[-1] + 1, int(np.ceil(ratio * edges[-1])))))
        sums = np.array([_tail_sum(self.eta_last, self.rank, hi, self.alpha)
                         for hi in edges[1:]])
        band = np.diff(np.concatenate([[0.0], sums]))
        band *= self.mass / band.sum()
        mult = np.diff(np.array(edges, dtype=np.float64))
        return band / mult, mult


def power_law_tail(eta: np.ndarray, size: int, mass: float, fit_from: float = 0.25,
                   name: str = "pool spectrum") -> PowerLawTail:
    """Tail model beyond the last of the computed eigenvalues eta (k0,) descending, of an
    operator on ``size`` points whose eigenvalues beyond rank k0 sum to ``mass``.

    alpha solves sum_{k > k0} eta_k0 (k / k0)^(-alpha) = mass (bisection on [0, 20]; the sum
    falls with alpha). Warns (``TailWarning``, with the numbers) when no alpha in that range
    fits (the tail then is the flat or the steepest one, whichever is closer), or when the
    log-log slope of the computed eigenvalues over ranks [ceil(fit_from k0), k0] differs from
    alpha by more than 0.75 (the top modes are inaccurate or the decay is no power law).
    """
    eta = np.asarray(eta, dtype=np.float64)
    k0 = eta.size
    eta0 = float(eta[-1])
    problems = []
    lo_a, hi_a = 0.0, 20.0
    if size <= k0 or mass <= 0:
        alpha = float("nan")
    elif eta0 <= 0:
        alpha = float("nan")
        problems.append(f"the last computed eigenvalue is {eta0:.3g} (no tail to extend)")
    elif _tail_sum(eta0, k0, size, lo_a) < mass:
        alpha = lo_a
        problems.append(f"the trace remainder {mass:.3g} exceeds a flat tail at the last computed "
                        f"eigenvalue ({_tail_sum(eta0, k0, size, lo_a):.3g})")
    elif _tail_sum(eta0, k0, size, hi_a) > mass:
        alpha = hi_a
        problems.append(f"the trace remainder {mass:.3g} is below the steepest tail "
                        f"(alpha = {hi_a:g}: {_tail_sum(eta0, k0, size, hi_a):.3g})")
    else:
        for _ in range(100):
            mid = 0.5 * (lo_a + hi_a)
            lo_a, hi_a = (mid, hi_a) if _tail_sum(eta0, k0, size, mid) > mass else (lo_a, mid)
        alpha = 0.5 * (lo_a + hi_a)
    lo = max(1, int(np.ceil(fit_from * k0)))
    ranks = np.arange(lo, k0 + 1, dtype=np.float64)
    vals = eta[lo - 1:]
    if vals.size >= 8 and np.all(vals > 0):
        slope, icpt = np.polyfit(np.log(ranks), np.log(vals), 1)
        rms = float(np.sqrt(np.mean((np.log(vals) - slope * np.log(ranks) - icpt) ** 2)))
        alpha_slope = float(-slope)
        if np.isfinite(alpha) and abs(alpha_slope - alpha) > 0.75:
            problems.append(f"the computed eigenvalues decay with slope {alpha_slope:.3g} over "
                            f"ranks {lo}..{k0}, the trace needs {alpha:.3g}")
    else:
        alpha_slope, rms = float("nan"), float("nan")
    if problems and size > k0:
        share = mass / max(mass + float(eta.sum()), np.finfo(float).tiny)
        warnings.warn(f"{name}: tail model beyond rank {k0} of {size} is poorly determined: "
                      f"{'; '.join(problems)}; the tail holds {share:.1%} of the eigenvalue "
                      f"mass; use a larger rank", TailWarning, stacklevel=2)
    return PowerLawTail(rank=k0, size=int(size), eta_last=eta0, alpha=alpha, mass=float(mass),
                        alpha_slope=alpha_slope, fit_lo=lo, fit_rms=rms)
