"""Load a repository script (``scripts/``, ``benchmarks/``) as a module, from its file: they
are not packages, and a script named like a package (benchmarks/planners.py) must not shadow it.
"""

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_module(relpath: str) -> ModuleType:
    """``load_module("scripts/wall_check.py")``: the module, named after the file's stem."""
    path = ROOT / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
