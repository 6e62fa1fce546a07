"""Conformance cases that read global variables, or whose validation depends on an app's variables: what the
harness needs to run them on knotflow's real variables service instead of Coze Studio's mocks.

Studio's tests mock the variable store: `mocks.variables.<scope>` answers a variable's value by name (`"*"`: any
name), as the text the store keeps. Here the case runs as an app in a fresh store that declares every variable
the canvas names in that scope, of type string with the mocked text as its default — and a string variable reads
its text as it is, as in Studio. `mocks.app_variable_meta` (validation cases) is the app's declarations, checked
as publishing an app's workflow checks them (`knotflow.service.variables.check_assignments`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from knotflow.contract import RunServices
from knotflow.dsl.values import GLOBAL_SOURCES
from knotflow.service.owners import APP, Registry
from knotflow.service.variables import VariableService, check_assignments, parse_type
from knotflow.store.migrate import upgrade
from knotflow.store.records import SCOPE_APP, SCOPE_USER, Run
from knotflow.store.repository import Store

APP_ID = "7000000000000000001"
SCOPES = {"app_variables": ("global_variable_app", SCOPE_APP), "user_variables": ("global_variable_user", SCOPE_USER)}
_TEMPLATE = re.compile(r'global_variable_(app|user|system)\s*\["(\w+)"]')  # an HTTP template's spelling
_ANNOTATION = re.compile(r"\s*\([^)]*\)$")  # "string (required)"


def mocks(case: dict[str, Any]) -> dict[str, Any]:
    variables = (case.get("mocks") or {}).get("variables") or {}
    return {key: value for key, value in variables.items() if not key.startswith("_")}


def skip_reasons(case: dict[str, Any]) -> list[str]:
    reasons = []
    unknown = sorted(scope for scope in mocks(case) if scope not in SCOPES)
    if unknown:
        reasons.append(f"variable mocks knotflow's variables cannot serve: {', '.join(unknown)} (system variables "
                       "are the run's own)")
    if any(not isinstance(value, str) for values in mocks(case).values() if isinstance(values, dict)
           for value in values.values()):
        reasons.append("variable mocks that are not the stored text")
    return reasons


def referenced(value: Any) -> Iterator[tuple[str, str]]:
    """(source, name) of every global variable a canvas names: references, and HTTP templates' spelling."""
    if isinstance(value, dict):
        path = value.get("path")
        if value.get("source") in GLOBAL_SOURCES and isinstance(path, list) and path:
            yield str(value["source"]), str(path[0])
        for item in value.values():
            yield from referenced(item)
    elif isinstance(value, list):
        for item in value:
            yield from referenced(item)
    elif isinstance(value, str):
        for scope, name in _TEMPLATE.findall(value):
            yield f"global_variable_{scope}", name


@asynccontextmanager
async def variable_services(case: dict[str, Any], canvas: dict[str, Any],
                            services: RunServices) -> AsyncIterator[None]:
    """Fill `services` with the run's variables: the case's app, declaring what its mocks answer."""
    if not mocks(case):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="knotflow-conformance-") as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'knotflow.db'}"
        upgrade(url)
        store = await Store.open(url)
        try:
            registry = Registry(store)
            await registry.create(APP, "conformance", owner_id=APP_ID)
            service = VariableService(store, registry)
            names = set(referenced(canvas))
            for scope, values in mocks(case).items():
                source, variable_scope = SCOPES[scope]
                for name in sorted(name for named_source, name in names if named_source == source):
                    default = values.get(name, values.get("*"))
                    if default is not None:
                        await service.declare(APP, APP_ID, name, "string", default, variable_scope)
            run = Run(execute_id="1", workflow_id="1", version="v1", space_id="1", run_mode=0, status="Running",
                      app_id=APP_ID)
            services.variables = services.global_variables = await service.for_run(run)
            yield
        finally:
            await store.close()


def check_declared_types(case: dict[str, Any], canvas: dict[str, Any]) -> None:
    """Publishing an app's workflow: its assignments against `mocks.app_variable_meta` (CanvasError)."""
    meta = (case.get("mocks") or {}).get("app_variable_meta") or {}
    if meta:
        declared = {name: parse_type(_ANNOTATION.sub("", str(spelled))) for name, spelled in meta.items()}
        check_assignments(canvas, declared, f"app {APP_ID}")
