"""Sub-commands of the ``ntk-mlft`` CLI, one module each (see :mod:`ntk_mlft.cli`)."""
