"""The modules below the run loop never import it: the run loop picks an executor, executors run the
shard maker, and nothing imports upwards (no import cycle between run, executors and preflight)."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "trajgen"
BELOW_THE_RUN_LOOP = ("shardmaker", "executors", "dask_executor", "preflight", "rundir")


def imported_modules(path: Path) -> set[str]:
    """Every trajgen module a file imports, at the top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("trajgen")}
        elif isinstance(node, ast.ImportFrom) and node.module and (node.module.startswith("trajgen") or node.level):
            module = node.module if not node.level else f"trajgen.{node.module}" if node.module else "trajgen"
            names.add(module)
            if module == "trajgen":  # from trajgen import run
                names |= {f"trajgen.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("module", BELOW_THE_RUN_LOOP)
def test_modules_below_the_run_loop_do_not_import_it(module):
    assert "trajgen.making.run" not in imported_modules(SRC / f"{module}.py")
