"""`humiao`: one command for sources (ingest), staff (alerts, child, summary,
notify) and the local stack (up, down, status: only where the development tooling is
installed). Each family of subcommands lives in its own module that exposes
`register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Modules that add subcommands; each defines register(subparsers). The local stack's
#: commands (up, down, status) are development tooling, present only where it is installed.
COMMAND_MODULES = (
    "humiao.cli.ingest_cmd",
    "humiao_dev.stack_cmd",
    "humiao.cli.desk_cmd",
    "humiao.cli.notify_cmd",
)


class CliError(Exception):
    """A clear message for the user; printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="humiao", description="Humiao (护苗): child-welfare allowance verification"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            absent = exc.name or ""
            if not (module_name == absent or module_name.startswith(absent + ".")):
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"humiao: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Run as `python -m humiao.cli.main`, this file is loaded twice (as __main__ and as
    # humiao.cli.main); dispatch through the imported module so CliError is one class.
    from humiao.cli.main import main as _main

    raise SystemExit(_main())
