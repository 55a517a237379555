"""`python -m humiao.notifier`."""

from humiao.notifier.main import main

if __name__ == "__main__":
    raise SystemExit(main())
