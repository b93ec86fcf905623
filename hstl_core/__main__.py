"""``python -m hstl_core``: see :mod:`hstl_core.cli`."""
import sys

from hstl_core.cli import main

sys.exit(main())
