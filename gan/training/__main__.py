"""`python -m gan.training FLAGS`: train.py, for where train.py is not at hand (a Space's app starts its runs so)."""

import sys

from . import main

sys.exit(main())
