"""``python -m benchmarks``: see benchmarks/README.md."""

import sys

from benchmarks.suite.runner import main

sys.exit(main())
