"""The IntEnums the .pyi stubs of the compiled core spell out equal the ones built from C.

stubtest (run by .ci/run) compares signatures but not enum members and their
values, so the one hand-written copy of each code list, the stub's, is checked
here against the enum the module builds from its C constants.
"""

import ast
import importlib
from enum import IntEnum
from pathlib import Path

import pytest

import obelisk._core

CORE = Path(obelisk._core.__file__).parent
STUBS = sorted(CORE.glob("*.pyi"))


def stub_enums(stub: Path) -> dict[str, dict[str, int]]:
    """Each ``class X(IntEnum)`` of a stub: its members and their values."""
    enums = {}
    for node in ast.parse(stub.read_text()).body:
        if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and base.id == "IntEnum" for base in node.bases):
            enums[node.name] = {
                item.targets[0].id: ast.literal_eval(item.value) for item in node.body
                if isinstance(item, ast.Assign) and isinstance(item.targets[0], ast.Name)}
    return enums


def test_the_core_has_stubs_with_enums():
    assert {stub.stem for stub in STUBS} >= {"book", "l2", "position", "risk"}
    assert "RiskReason" in stub_enums(CORE / "risk.pyi")


@pytest.mark.parametrize("stub", STUBS, ids=lambda stub: stub.stem)
def test_stub_enums_match_the_compiled_ones(stub):
    module = importlib.import_module(f"obelisk._core.{stub.stem}")
    for name, members in stub_enums(stub).items():
        runtime = getattr(module, name)
        assert issubclass(runtime, IntEnum)
        assert {member.name: member.value for member in runtime} == members, name
