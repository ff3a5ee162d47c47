"""Names of a package imported from their modules when first asked for (PEP 562), so that importing the
package costs nothing until a name is used (`titans-ts --help` loads no torch, predicting no Lightning)."""

from __future__ import annotations

import importlib
import sys


def lazy_names(package: str, module_of: dict[str, str], modules: dict[str, str] | None = None):
    """The `__getattr__` of `package`: a name of `module_of` is read from `package.<its module>` once and kept
    in the package; a name of `modules` is that whole module (by its full name)."""
    modules = modules or {}

    def __getattr__(name: str):
        if name in modules:
            return importlib.import_module(modules[name])
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
