"""`python -m humiao.ingest`: run the ingest gateway (see humiao.ingest.main)."""

from humiao.ingest.main import main

if __name__ == "__main__":
    raise SystemExit(main())
