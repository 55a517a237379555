"""`python -m humiao.desk`: run the alert desk (see humiao.desk.main)."""

from humiao.desk.main import main

if __name__ == "__main__":
    main()
