"""`python -m humiao_dev.bench` (see humiao_dev.bench.cli)."""

import sys

from humiao_dev.bench.cli import main

sys.exit(main())
