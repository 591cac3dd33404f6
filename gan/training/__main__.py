"""`python -m gan.training FLAGS`: train.py, for where train.py is not at hand (the app's Train tab runs its runs so).

The process ends with os._exit once main() returns: by then every file is written (atomically) and closed and the run
folder's lock released, and the interpreter's teardown with torch loaded takes ~0.7 s more, which a visitor who pressed
Stop would wait for."""

import os
import sys

from . import main

code = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
