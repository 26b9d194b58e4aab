"""What users read: error-vs-budget and learning curves (``curves``) and their figures
(``plotting``, imported on use: it pulls in matplotlib)."""
