"""Transfer across physics as two-level MLFT: predicted fine-tune vs scratch curves, samples saved,
pre-training allocation, and their check against trained networks (``docs/transfer.md``)."""

from ntk_mlft.transfer.estimator import TransferEstimator as TransferEstimator
from ntk_mlft.transfer.estimator import transfer_montecarlo as transfer_montecarlo

__all__ = ["TransferEstimator", "transfer_montecarlo"]
