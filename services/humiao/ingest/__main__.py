"""`python -m humiao.ingest`: run the ingest gateway (see humiao.ingest.app)."""

from humiao.ingest.app import main

if __name__ == "__main__":
    raise SystemExit(main())
