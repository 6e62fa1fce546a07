"""Node types, one module each: every public module here holds one `Node` subclass with its canvas `type_id`.

`NODE_TYPES` maps each type id to its class. The composition root hands it to the engine's compiler, which
imports no node module itself: adding a node type is adding a module (and its tests).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import MappingProxyType

from knotflow.contract import Node, NodeTypes


def _discover() -> NodeTypes:
    found: dict[str, type[Node]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name.startswith("_"):
            continue  # helpers shared by node modules
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for cls in vars(module).values():
            if (inspect.isclass(cls) and issubclass(cls, Node) and cls.__module__ == module.__name__
                    and not inspect.isabstract(cls)):
                if cls.type_id in found:
                    raise RuntimeError(f"node type {cls.type_id} is defined twice ({found[cls.type_id]} and {cls})")
                found[cls.type_id] = cls
    return MappingProxyType(found)


NODE_TYPES: NodeTypes = _discover()
