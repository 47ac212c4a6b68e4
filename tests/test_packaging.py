"""The distribution layout: every package directory is installed, and the mapped packages import."""

from __future__ import annotations

import importlib
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    found = set()
    for dist_name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([dist_name, *rel.parts]))
    assert found - listed == set(), f"package directories missing from pyproject packages: {found - listed}"


def test_mapped_packages_import_under_the_codegym_namespace():
    for name in (
        "codegym.envs",
        "codegym.agents",
        "codegym.rewards",
        "codegym.wrappers",
        "codegym.execution",
    ):
        module = importlib.import_module(name)
        assert module.__doc__, f"{name} has no docstring"


def test_py_typed_marker_ships():
    assert (ROOT / "codegym" / "py.typed").is_file()
