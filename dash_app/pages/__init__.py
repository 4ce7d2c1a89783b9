"""The dashboard's pages: one module per page, found here by ``create_app``.

A page module holds its layout and callbacks; its queries go in ``queries.py`` and its
figures in ``figures.py``. It defines:

- ``PATH``, ``NAME``, ``TITLE``, ``ORDER``: where it lives, its link text in the
  header's navigation, the browser tab's title, and its place among the links;
- ``layout(**query)``: the page's layout, unfilled, built from ``page_parts``,
  ``panels`` and ``controls``;
- ``register_callbacks(app, gold, config)``: its callbacks, reading gold through
  ``gold``, with the dashboard's settings (``page_parts.DashConfig``); it may return
  the layout the pages router should call instead of ``layout`` (``panels.drawn``: the
  page drawn with its view and controls already filled for the URL);
- ``INPUT_RULES``: a rule for each of its callbacks' inputs (``guard.py``).

``create_app`` registers each with ``dash.register_page`` (explicitly, not at import: the
modules are imported by tests and the benchmark without an app) and calls
``register_callbacks``. Adding a page is adding its module here, plus its queries.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from types import ModuleType
from typing import Any

REQUIRED = ("PATH", "NAME", "TITLE", "ORDER", "layout", "register_callbacks", "INPUT_RULES")


def modules() -> list[ModuleType]:
    """Every page module of this package, in their ORDER."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        missing = [name for name in REQUIRED if not hasattr(module, name)]
        if missing:
            raise TypeError(f"page module {module.__name__} lacks {', '.join(missing)}")
        found.append(module)
    return sorted(found, key=lambda m: (m.ORDER, m.__name__))


def input_rules() -> dict[str, Callable[[Any], bool]]:
    """Every page's rules for its callbacks' inputs, for the guard."""
    rules: dict[str, Callable[[Any], bool]] = {}
    for module in modules():
        rules.update(module.INPUT_RULES)
    return rules
