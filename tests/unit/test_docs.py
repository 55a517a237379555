"""The user-facing docs stay true of the code: every variable the code reads is
documented in docs/configuration.md, every path and link of the README exists, and the
README stays short enough to read."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

import humiao

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(humiao.__file__).resolve().parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
ENV_NAME = re.compile(r"\b((?:HUMIAO|KAFKA)_[A-Z0-9]+(?:_[A-Z0-9]+)*)\b")
#: A settings field (pydantic-settings reads it from the upper-cased variable).
SETTINGS_FIELD = re.compile(r"^\s+((?:humiao|kafka)_[a-z0-9_]+)\s*:", re.MULTILINE)


def _sources() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "api" not in p.relative_to(PACKAGE).parts[:1]]


def _settings_classes() -> set[type[BaseSettings]]:
    for module in pkgutil.walk_packages([str(PACKAGE)], prefix="humiao."):
        if module.name.startswith("humiao.api") or module.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(module.name)
        except ImportError:  # an optional extra is absent: its variables are scanned as text
            continue
    found: set[type[BaseSettings]] = set()
    pending = list(BaseSettings.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("humiao."):
            found.add(cls)
        pending.extend(cls.__subclasses__())
    return found


def variables_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        names.update(ENV_NAME.findall(text))
        if "BaseSettings" in text:
            names.update(name.upper() for name in SETTINGS_FIELD.findall(text))
    for cls in _settings_classes():
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field_name, field in cls.model_fields.items():
            names.add((field.alias or f"{prefix}{field_name}").upper())
    return names


def test_every_variable_the_code_reads_is_documented_in_one_place():
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", CONFIGURATION))
    missing = sorted(variables_read_by_the_code() - documented)
    assert not missing, f"add to docs/configuration.md: {missing}"


def test_the_settings_scan_finds_the_services_settings():
    """Guards the test above against scanning nothing."""
    names = variables_read_by_the_code()
    assert "HUMIAO_VERIFIER_BATCH_MAX" in names
    assert "HUMIAO_DB_POOL_MAX" in names


def _layout_paths() -> list[str]:
    layout = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    paths: list[str] = []
    for cell in re.findall(r"^\| ([^|]+) \|", layout, flags=re.MULTILINE):
        paths.extend(re.findall(r"`([^`]+)`", cell))
    return paths


def test_the_readme_layout_names_only_paths_that_exist():
    paths = _layout_paths()
    assert len(paths) >= 8
    missing = [p for p in paths if not (ROOT / p.rstrip("/")).exists()]
    assert not missing, f"README layout names paths that do not exist: {missing}"


@pytest.mark.parametrize("target", sorted(set(re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README))))
def test_every_relative_link_of_the_readme_exists(target):
    assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


def test_the_readme_stays_short():
    assert len(README.encode("utf-8")) < 16 * 1024
