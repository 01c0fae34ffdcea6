"""``python -m zmqex.bench``: the same as ``bin/zmqex-bench``."""

import sys

from zmqex.bench.cli import main

sys.exit(main())
