"""Executors by name: built-in, registered by entry point, or ``"package.module:factory"``."""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError, ExecutorError, NbcacheError
from ._interface import Executor, ExecutorFactory

__all__ = ["BUILTIN_EXECUTORS", "ENTRY_POINT_GROUP", "load_executor", "resolve_factory"]

ENTRY_POINT_GROUP = "sphinx_nbcache.executors"

#: name -> "module:factory"; imported only when chosen (Dask and Jupyter are optional)
BUILTIN_EXECUTORS: dict[str, str] = {
    "local": "sphinx_nbcache.execute._local:LocalExecutor",
    "dask": "sphinx_nbcache.execute._dask:DaskExecutor",
    "jupyter": "sphinx_nbcache.execute._jupyter:JupyterExecutor",
}


def resolve_factory(spec: str, option: str = "nbcache_executor") -> ExecutorFactory:
    """The factory named by ``spec`` (:class:`ConfigError` naming ``option`` if none)."""
    target = BUILTIN_EXECUTORS.get(spec)
    if target is None and ":" not in spec:
        target = _entry_point(spec)
        if target is None:
            known = ", ".join(sorted({*BUILTIN_EXECUTORS, *_entry_point_names()}))
            raise ConfigError(
                option,
                f"no executor named {spec!r} (known: {known}); give one of these or "
                "'package.module:factory'",
            )
    module_name, _, attribute = (target or spec).partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            option, f"cannot import {module_name!r} for executor {spec!r}: {exc}"
        ) from None
    factory: Any = module
    try:
        for part in attribute.split("."):
            factory = getattr(factory, part)
    except AttributeError:
        raise ConfigError(option, f"{module_name!r} has no attribute {attribute!r}") from None
    if not attribute or not callable(factory):
        raise ConfigError(option, f"{spec!r} does not name a callable factory")
    result: ExecutorFactory = factory
    return result


def load_executor(spec: str, **settings: Any) -> Executor:
    """Make the executor named by ``spec`` with ``settings`` (see :class:`ExecutorFactory`)."""
    factory = resolve_factory(spec)
    try:
        executor = factory(**settings)
    except NbcacheError:
        raise  # says what to do already
    except Exception as exc:
        raise ExecutorError(
            spec, f"could not be made ({type(exc).__name__}: {exc}); check its settings"
        ) from None
    if not isinstance(executor, Executor):
        raise ConfigError(
            "nbcache_executor",
            f"the factory for {spec!r} returned {type(executor).__name__}, which lacks "
            "submit(job) and shutdown(cancel)",
        )
    return executor


def _entry_points() -> Any:
    from importlib.metadata import entry_points

    return entry_points(group=ENTRY_POINT_GROUP)


def _entry_point(name: str) -> str | None:
    for entry in _entry_points():
        if entry.name == name:
            return str(entry.value)
    return None


def _entry_point_names() -> list[str]:
    return [entry.name for entry in _entry_points()]
