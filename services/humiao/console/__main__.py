"""`python -m humiao.console`: run the staff console (see humiao.console.main)."""

from humiao.console.main import main

if __name__ == "__main__":
    main()
