"""`python -m humiao.bench` (see humiao.bench.cli)."""

import sys

from humiao.bench.cli import main

sys.exit(main())
