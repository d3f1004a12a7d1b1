"""``python -m pytest_llenergy.cli``: the same as ``lem``."""

import sys

from pytest_llenergy.cli import main

sys.exit(main())
