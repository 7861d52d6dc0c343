"""The one-way flow of the code: each layer imports only the layers before it.

  base (spec, modes, schema, errors, outputs) -> parse -> capture | model -> analysis -> view
  -> commands (tracer.cli, tracer.commands, every */cli.py)

workloads/ imports only base, so the workload loads none of the parsers, capture, model or report.
Imports inside functions count too: a lazy import is still a dependency."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

ALLOWED = {
    "base": {"base"},
    "workloads": {"base", "workloads"},
    "parse": {"base", "parse"},
    "capture": {"base", "parse", "capture", "workloads"},
    "model": {"base", "parse", "model"},
    "analysis": {"base", "parse", "model", "analysis"},
    "view": {"base", "parse", "model", "analysis", "view"},
    "commands": {"base", "workloads", "parse", "capture", "model", "analysis", "view", "commands"},
}


def layer(module: str) -> str:
    if module.startswith("workloads"):
        return "workloads"
    if module == "tracer.cli" or module.startswith("tracer.commands") or module.endswith(".cli"):
        return "commands"
    if module in ("tracer",) or module.startswith(("tracer.base", "tracer.data")):
        return "base"
    if module.startswith("tracer.parse") or module in ("tracer.dscripts", "tracer.freebsd_render"):
        return "parse"
    if module.startswith("tracer.capture") or module == "tracer.simulate":
        return "capture"
    if module == "tracer.model":
        return "model"
    if module.startswith("tracer.analysis"):
        return "analysis"
    if module.startswith("tracer.view"):
        return "view"
    raise AssertionError(f"{module}: in no layer (add it to tests/test_layers.py)")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    base = REPO.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if _is_module(sub) else node.module)
    return {m for m in out if m.split(".")[0] in ("tracer", "workloads")}


SOURCES = sorted(p for top in ("tracer", "workloads") for p in (REPO / top).rglob("*.py")
                 if "out" not in p.relative_to(REPO).parts and not p.name.startswith("build_"))


def test_every_import_goes_down_the_layers():
    wrong = []
    for path in SOURCES:
        mod = module_name(path)
        for dep in sorted(imports_of(path)):
            if layer(dep) not in ALLOWED[layer(mod)]:
                wrong.append(f"{mod} ({layer(mod)}) imports {dep} ({layer(dep)})")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_a_lazy_upward_import(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from tracer.view import report\n    import tracer.model\n")
    assert imports_of(src) == {"tracer.view.report", "tracer.model"}
    assert layer("tracer.view.report") not in ALLOWED[layer("tracer.analysis.compare")]


@pytest.mark.parametrize("entry", ["workloads.driver", "workloads.__main__"])
def test_the_workload_loads_without_the_upper_layers(entry):
    code = (f"import sys, importlib; importlib.import_module({entry!r}); "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('tracer'))))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    mods = loaded.stdout.split()
    assert mods and all(m == "tracer" or m.startswith("tracer.base") for m in mods), mods
