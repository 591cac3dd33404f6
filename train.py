"""Train a DCGAN: `python train.py --help`. All logic lives in gan.training."""

import sys

from gan.training import main

if __name__ == "__main__":
    sys.exit(main())
