"""The package is laid out in layers (pyproject.toml's import-linter contracts say which), with
no import cycle, at most 10 modules beside the layers, and no module over 400 lines unless its
first lines say why."""

import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp", reason="grimp comes with the dev extra (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "trajgen"
LAYERS = ("content", "store", "watch", "making", "use")
MAX_LINES = 400


def test_no_import_cycle_among_modules():
    graph = grimp.build_graph("trajgen", include_external_packages=False)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(importer=imported, imported=module):
                cycles.append(f"{module} -> {imported} -> ... -> {module}")
    assert cycles == []


def test_the_layers_are_subpackages_and_few_modules_sit_beside_them():
    for layer in LAYERS:
        assert (PACKAGE / layer / "__init__.py").is_file(), layer
    assert len(list(PACKAGE.glob("*.py"))) <= 10


def test_no_module_is_over_400_lines_without_a_reason_at_its_top():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_LINES and not any(line.startswith("# longer than 400 lines:") for line in lines[:5]):
            long.append(f"{path.relative_to(PACKAGE)}: {len(lines)} lines")
    assert long == []


def test_the_import_contracts_hold():
    """lint-imports checks pyproject.toml's contracts: the layers, and where torch, dask, cv2,
    matplotlib and fsspec may be imported."""
    linter = Path(sys.executable).with_name("lint-imports")
    if not linter.exists():
        pytest.skip("import-linter comes with the dev extra (pip install -e '.[dev]')")
    result = subprocess.run([str(linter), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
