"""`python -m humiao.ingest`: run the ingest gateway (see humiao.ingest.app)."""

from humiao.ingest.app import main

raise SystemExit(main())
