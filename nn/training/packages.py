"""chainrule's sibling packages ``losses`` and ``optim`` must be chainrule's own.

Python searches the script's folder (or the working folder) before the installed packages,
so a user's own ``losses.py`` or ``optim.py`` there is imported in their place, and training
would fail much later with ``module 'losses' has no attribute 'get'``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: The folder holding chainrule's packages nn, losses and optim.
ROOT = Path(__file__).resolve().parents[2]


def check_sibling_packages(names: tuple[str, ...] = ("losses", "optim")) -> None:
    """Raise ImportError naming the file found first when ``losses`` or ``optim`` is not ours.

    Looks the packages up without importing them (or reads the ones imported already).
    """
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None:  # not installed: the import itself says so
            continue
        ours = ROOT / name / "__init__.py"
        if spec.origin is not None and Path(spec.origin).resolve() == ours:
            continue
        found = spec.origin or ", ".join(spec.submodule_search_locations or ["?"])
        raise ImportError(
            f"chainrule needs its own package {name!r} ({ours}), but Python finds {found} "
            f"first (the script's or the working folder comes before installed packages); "
            f"rename that {'folder' if spec.origin is None else 'file'}, e.g. to my_{name}"
        )
