"""The layering of ARCHITECTURE.md as tests: no import circle (function-level imports included), the
generic layers name no family, and `lint-imports` keeps the contracts in pyproject.toml."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "odezoo"
FAMILIES = sorted(p.name for p in (PACKAGE / "models").iterdir() if (p / "presets.json").is_file())
# What names a family in code: its folder, and its models' class names (from the registry).
FAMILY_WORDS = re.compile(
    r"lm_?resnet|pde_?net|convnets|small_?cnn|wide_?resnet|preact|mean_?field|macaron|durr",
    re.IGNORECASE,
)


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = set()
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.add(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_is_in_an_import_circle():
    """Every `import` counts, those written inside functions too (grimp reads them all)."""
    graph = grimp.build_graph("odezoo", exclude_type_checking_imports=True)
    assert FAMILIES and _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    graph = grimp.ImportGraph()
    for a, b in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")):
        graph.add_import(importer=a, imported=b)
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]


GENERIC = [
    *sorted((PACKAGE / "tasks").glob("*.py")),
    *(PACKAGE / f for f in ("cli.py", "eval.py", "export.py")),
]


@pytest.mark.parametrize("path", GENERIC, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_generic_layers_name_no_family(path):
    """Tasks, the CLI, evaluation and export are written against tasks, never against a family."""
    lines = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if FAMILY_WORDS.search(line)
    ]
    assert lines == []


LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed")
def test_the_import_contracts_hold():
    result = subprocess.run([LINT_IMPORTS], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
