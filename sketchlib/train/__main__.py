"""``python -m sketchlib.train ...``: the training command line."""

import sys

from sketchlib.train import main

sys.exit(main())
