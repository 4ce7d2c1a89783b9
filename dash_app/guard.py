"""The callback endpoint's door: a malformed request is answered 4xx, before Dash runs it.

Dash turns any request to ``/_dash-update-component`` into a call of the callback it
names, and a body that is not what its own renderer sends (not JSON, not an object,
an unknown callback, inputs missing or of the wrong type, a huge payload) ends in an
exception: a 500 with a traceback in the log. Here every such request is checked
against the app's own callback map and a rule per input (``Check``): a body over
``MAX_BODY`` is 413, anything else malformed 400 with a one-line reason, and one
warning line in the log.

Every input of every server-side callback needs a rule (``unchecked_inputs`` lists
those without one; a test asserts it is empty): a page module declares its inputs'
rules in ``INPUT_RULES``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from dash import Dash

log = logging.getLogger("dash_app.guard")

Check = Callable[[Any], bool]
# the renderer's requests for this app are a few KB; Flask answers 413 past this
MAX_BODY = 256 * 1024
# the most inputs a callback of this app has (pattern-matching inputs are not used)
MAX_ITEMS = 64


def text(limit: int = 10_000) -> Check:
    """A string of at most ``limit`` characters, or nothing."""
    return lambda v: v is None or (isinstance(v, str) and len(v) <= limit)


def count() -> Check:
    """A non-negative integer (``n_intervals``, ``n_clicks``), or nothing."""
    return lambda v: v is None or (type(v) is int and 0 <= v < 2**53)


def choice(limit: int = 100) -> Check:
    """A radio or dropdown value: a short string or a number, or nothing."""
    return lambda v: (
        v is None or (isinstance(v, str) and len(v) <= limit) or (type(v) in (int, float))
    )


def texts(items: int = 100, limit: int = 200) -> Check:
    """A multi-select's value: a list of short strings (or one), or nothing."""
    one = text(limit)
    return lambda v: (
        one(v)
        or (
            isinstance(v, list)
            and len(v) <= items
            and all(isinstance(x, str) and one(x) for x in v)
        )
    )


def store(limit: int = 16_000) -> Check:
    """A dcc.Store's data as this app writes it: an object of JSON values, at most
    ``limit`` characters as JSON, or nothing (what comes back is checked again where it
    is read: ``panels.View.from_store``)."""

    def check(value: Any) -> bool:
        if value is None:
            return True
        if not isinstance(value, dict):
            return False
        try:
            return len(json.dumps(value)) <= limit
        except (TypeError, ValueError, RecursionError):
            return False

    return check


# Dash Pages' own router (dash.page_container)
ROUTER_RULES: dict[str, Check] = {
    "_pages_location.pathname": text(2_000),
    "_pages_location.search": text(10_000),
}


def install(app: Dash, rules: Mapping[str, Check]) -> None:
    """Check every callback request of ``app`` against ``rules`` ("id.property" → Check)."""
    from flask import Response, request

    app.server.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    path = app.config.routes_pathname_prefix + "_dash-update-component"
    all_rules = {**ROUTER_RULES, **rules}

    @app.server.before_request
    def check() -> Response | None:
        if request.path != path or request.method != "POST":
            return None
        problem = problem_with(app, all_rules, request.get_data(cache=True))  # 413 past MAX_BODY
        if problem is None:
            return None
        log.warning("callback request refused (400) from %s: %s", request.remote_addr, problem)
        return Response(json.dumps({"error": problem}) + "\n", 400, mimetype="application/json")


def problem_with(app: Dash, rules: Mapping[str, Check], raw: bytes) -> str | None:
    """Why this callback request body is malformed, or None if it is well formed."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return "the body is not JSON"
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    output = body.get("output")
    # clientside callbacks are in the map too, without a Python function to call
    if not isinstance(output, str) or "callback" not in app.callback_map.get(output, {}):
        return "no such callback output"
    spec = app.callback_map[output]
    for field, declared in (("inputs", spec["inputs"]), ("state", spec["state"])):
        sent = body.get(field, [])
        if not isinstance(sent, list) or len(sent) != len(declared):
            return f"{field}: expected {len(declared)} items"
        for item, want in zip(sent, declared, strict=True):
            name = str(_name(want))
            if _name(item) != name:
                return f"{field}: expected {name}"
            rule = rules.get(name)
            if rule is None:
                return f"{field}: {name} has no rule"
            if not rule(item.get("value")):
                return f"{field}: {name} has a value of the wrong type or size"
    outputs = body.get("outputs")
    items = outputs if isinstance(outputs, list) else [outputs]
    declared_outputs = output[2:-2].split("...") if output.startswith("..") else [output]
    if len(items) > MAX_ITEMS or sorted(str(_name(o)) for o in items) != sorted(declared_outputs):
        return "outputs do not match the callback"
    changed = body.get("changedPropIds", [])
    inputs = {_name(i) for i in spec["inputs"]}
    if not isinstance(changed, list) or not all(
        isinstance(c, str) and c in inputs for c in changed
    ):
        return "changedPropIds: not inputs of the callback"
    return None


def _name(item: object) -> str | None:
    """ "id.property" of a callback argument as the renderer sends it, None if malformed."""
    if (
        isinstance(item, dict)
        and isinstance(item.get("id"), str)
        and isinstance(item.get("property"), str)
    ):
        return f"{item['id']}.{item['property']}"
    return None


def unchecked_inputs(app: Dash, rules: Mapping[str, Check]) -> list[str]:
    """The inputs and states of ``app``'s server-side callbacks that have no rule."""
    every = {**ROUTER_RULES, **rules}
    return sorted(
        {
            str(_name(i))
            for spec in app.callback_map.values()
            if "callback" in spec
            for i in spec["inputs"] + spec["state"]
            if _name(i) not in every
        }
    )
