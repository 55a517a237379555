"""`python -m humiao.verifier`."""

from humiao.verifier.main import main

if __name__ == "__main__":
    raise SystemExit(main())
