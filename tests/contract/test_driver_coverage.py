"""Every public function of the OpenStack driver has a contract test that calls it.

The contract suite exists to pin what Skyfleet's own calls meet on real sites. This test (not a
contract test; it runs in the default suite, no site needed) lists the driver's public functions by
introspection -- module-level functions, and public methods of the non-dataclass classes, of every
``skyfleet.drivers.openstack`` module -- and compares them with what the contract tests declare
with ``@pytest.mark.covers("module.function", ...)`` (read from their source, so nothing runs).
A function may instead sit in ``PENDING`` with the reason it has no contract test yet.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
from pathlib import Path

import skyfleet.drivers.openstack as driver_package

HERE = Path(__file__).resolve().parent

#: Driver functions without a contract test yet, each with the reason.
PENDING: dict[str, str] = {
    "cabundle.bundle_path": "writes an inline CA bundle to a private local file; the simulator and realstack "
                            "serve plain HTTP, so no site can show TLS with it (tests/unit/test_ca_bundle.py)",
}


def driver_functions() -> set[str]:
    """``module.function`` and ``module.Class.method`` for every public callable of the driver."""
    found: set[str] = set()
    for info in pkgutil.iter_modules(driver_package.__path__):
        module = importlib.import_module(f"{driver_package.__name__}.{info.name}")
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                found.add(f"{info.name}.{name}")
            elif inspect.isclass(obj) and not dataclasses.is_dataclass(obj) and not issubclass(obj, BaseException):
                found.update(f"{info.name}.{name}.{attr}" for attr, member in vars(obj).items()
                             if not attr.startswith("_") and inspect.isfunction(member))
    return found


def _covers_calls(tree: ast.AST) -> list[ast.Call]:
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "covers":
            target = node.func.value
            if isinstance(target, ast.Attribute) and target.attr == "mark":
                calls.append(node)
    return calls


def declared_coverage() -> dict[str, list[str]]:
    """``module.function`` -> the contract test files that declare they call it."""
    covered: dict[str, list[str]] = {}
    for path in sorted(HERE.glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        for call in _covers_calls(ast.parse(path.read_text(), str(path))):
            for arg in call.args:
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), \
                    f"{path.name}:{call.lineno}: covers() takes string literals"
                covered.setdefault(arg.value, []).append(path.name)
    return covered


def test_driver_functions_are_found() -> None:
    found = driver_functions()
    assert {"syncapi.create_keypair", "inventory.Reader.full", "quota_batch.change_hints"} <= found
    assert not any(name.split(".")[-1].startswith("_") for name in found)


def test_every_driver_function_has_a_contract_test() -> None:
    found, covered = driver_functions(), declared_coverage()
    missing = sorted(found - set(covered) - set(PENDING))
    assert not missing, f"driver functions without a contract test (add @pytest.mark.covers): {missing}"


def test_coverage_names_only_real_functions() -> None:
    found, covered = driver_functions(), declared_coverage()
    unknown = sorted(set(covered) - found)
    assert not unknown, f"covers() names functions the driver does not have: {unknown}"
    stale = sorted(set(PENDING) & set(covered))
    assert not stale, f"PENDING functions that now have a contract test: {stale}"
    assert not sorted(set(PENDING) - found), "PENDING names functions the driver does not have"


def test_pending_entries_say_why() -> None:
    assert all(reason.strip() for reason in PENDING.values()), PENDING
