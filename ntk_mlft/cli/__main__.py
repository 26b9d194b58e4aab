"""``python -m ntk_mlft.cli``: the same as the ``ntk-mlft`` console script."""

import sys

from ntk_mlft.cli.entry import main

sys.exit(main())
