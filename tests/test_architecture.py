"""The feature packages depend on each other in one direction only (no import cycles)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SCIWEEK = Path(__file__).resolve().parent.parent / "sciweek"
# Shared core (models, permissions, forms, tokens, ...) is not a feature: anyone may use it.
NOT_FEATURES = {"models", "translations", "demo_data"}
FEATURES = sorted(
    p.name for p in SCIWEEK.iterdir() if (p / "__init__.py").exists() and p.name not in NOT_FEATURES
)


def _imported_features(path: Path, own: str) -> set[str]:
    """Feature packages that the module at ``path`` (inside feature ``own``) imports,
    anywhere in the module (top level or not)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0:
            parts = (node.module or "").split(".")
            targets = [parts[1]] if parts[0] == "sciweek" and len(parts) > 1 else []
        elif node.level == 2 and node.module:  # from ..feature.x import y
            targets = [node.module.split(".")[0]]
        elif node.level == 2:  # from .. import feature
            targets = [alias.name for alias in node.names]
        else:
            targets = []
        found.update(t for t in targets if t in FEATURES and t != own)
    return found


def feature_graph() -> dict[str, set[str]]:
    return {
        feature: set().union(
            *(_imported_features(f, feature) for f in (SCIWEEK / feature).rglob("*.py"))
        )
        for feature in FEATURES
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph``, as the list of packages along it, or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_feature_packages_are_found():
    assert {"manage", "registration", "activities", "checkin", "training"} <= set(FEATURES)


def test_feature_packages_import_each_other_without_cycles():
    graph = feature_graph()
    assert _cycle(graph) is None, f"import cycle between feature packages: {_cycle(graph)}"


def test_manage_is_not_shared_core():
    """Permissions and shared forms live outside manage/: no other feature imports it."""
    importers = sorted(f for f, targets in feature_graph().items() if "manage" in targets)
    assert importers == []


@pytest.mark.parametrize("feature", FEATURES)
def test_each_feature_package_imports_on_its_own(feature):
    for module in sorted((SCIWEEK / feature).glob("*.py")):
        name = "sciweek." + feature + ("" if module.stem == "__init__" else "." + module.stem)
        importlib.import_module(name)


def _ends_transactions(path: Path) -> list[str]:
    """``commit()`` / ``rollback()`` called on the session (``db.session.commit()``,
    ``session.rollback()``) in the module at ``path``, as "line: call"."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in {"commit", "rollback"}:
            continue
        owner = ast.unparse(node.func.value)
        if owner == "session" or owner.endswith(".session") or owner.endswith("session()"):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize(
    "services", sorted(SCIWEEK.glob("*/services.py")), ids=lambda p: p.parent.name
)
def test_services_only_flush_and_never_end_the_transaction(services):
    """One commit point: the request, command or job commits (sciweek/transactions.py);
    a service that committed would make a refused request half-written."""
    assert _ends_transactions(services) == []


def test_the_commit_finder_finds_a_commit(tmp_path):
    module = tmp_path / "services.py"
    module.write_text("def f():\n    db.session.commit()\n    db.session().rollback()\n")
    assert _ends_transactions(module) == ["2: db.session.commit()", "3: db.session().rollback()"]


def _private_uses(path: Path) -> list[str]:
    """Private helpers of another sciweek module used by the module at ``path``:
    ``from .x import _y`` and ``x._y`` where ``x`` was imported from sciweek (third-party
    objects such as ``current_user._get_current_object`` are theirs to document)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    ours: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0 and not (node.module or "").startswith("sciweek"):
            continue
        for alias in node.names:
            ours.add(alias.asname or alias.name)
            if alias.name.startswith("_"):
                found.append(f"{node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ours
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


# The models package shares ``activities._in_check`` among its modules (a CHECK builder);
# renaming it is left to a change that owns the models.
_PRIVATE_USE_SCOPE = sorted(p for p in SCIWEEK.rglob("*.py") if "models" not in p.parts)


@pytest.mark.parametrize("module", _PRIVATE_USE_SCOPE, ids=lambda p: str(p.relative_to(SCIWEEK)))
def test_modules_use_no_other_modules_private_helpers(module):
    """One home for every rule (issue 10): a rule another module needs is a public function
    of its home (the door's check-in: ``checkin.services.check_in_at_door``), not a private
    helper borrowed from it."""
    assert _private_uses(module) == []


def test_the_private_use_finder_finds_one(tmp_path):
    module = tmp_path / "door.py"
    module.write_text(
        "from flask_login import current_user\n"
        "from . import services\n"
        "from .services import _log\n\n"
        "services._check_in(current_user._get_current_object())\n"
    )
    assert _private_uses(module) == ["3: from services import _log", "5: services._check_in"]
