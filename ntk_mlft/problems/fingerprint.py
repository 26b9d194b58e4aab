"""Solver fingerprints: a hash of the code that RUNS, so cached labels follow the solver.

:func:`code_digest` hashes what the interpreter executes -- the bytecode, names and constants of
functions, methods and nested code objects, plus a module's plain constants -- and not the
source file on disk. So:

- editing a solver (even one constant) changes the digest, with nobody bumping a number;
- a file edited while an old version of it is still loaded (a notebook that did not reload)
  does not poison the cache: the digest describes the loaded code;
- comments, docstring-free formatting and line numbers do not matter, nor where the checkout
  lives (file names are left out), so clones share caches; a new Python version (new
  bytecode) changes every digest.

What is hashed for an object: for a class, every class in its MRO outside ``builtins``/``abc``
and, for each, all functions, classes and plain constants (bool/int/float/complex/str/bytes/
tuple/None) in the globals of its module that are defined in that module or in ``ntk_mlft``
(helpers imported from third-party packages are covered by their version numbers instead).
"""

from __future__ import annotations

import hashlib
import sys
import types
from typing import Any

__all__ = ["code_digest"]

_PLAIN = (bool, int, float, complex, str, bytes, type(None))


def _const(value: Any) -> str:
    """A process-independent text for a constant: frozensets sorted (str hashing is salted), and
    objects other than plain values by type name only (their repr may hold a memory address)."""
    if isinstance(value, (frozenset, set)):
        return "{" + ",".join(sorted(_const(v) for v in value)) + "}"
    if isinstance(value, tuple):
        return "(" + ",".join(_const(v) for v in value) + ")"
    if isinstance(value, _PLAIN) or value is Ellipsis:
        return repr(value)
    return f"<{type(value).__qualname__}>"


def _is_plain(value: Any) -> bool:
    return isinstance(value, _PLAIN) or (isinstance(value, tuple) and all(_is_plain(v) for v in value))


def _update_code(digest: Any, code: types.CodeType, doc: str | None = None) -> None:
    digest.update(code.co_code)
    digest.update(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_argcount,
                        code.co_kwonlyargcount, code.co_flags)).encode())
    for value in code.co_consts:
        if isinstance(value, types.CodeType):
            _update_code(digest, value)
        elif not (doc is not None and value is doc):  # docstrings do not change what runs
            digest.update(_const(value).encode())


def _update_callable(digest: Any, obj: Any, label: str) -> None:
    """Hash ``label`` and the code of a function / method / property; anything else (caches such
    as ``__slotnames__`` that pickling adds to a class) is ignored."""
    func = getattr(obj, "__func__", obj)            # classmethod / staticmethod
    func = getattr(func, "fget", func)               # property
    code = getattr(func, "__code__", None)
    if isinstance(code, types.CodeType):
        digest.update(label.encode())
        _update_code(digest, code, doc=getattr(func, "__doc__", None))
        digest.update(_const(getattr(func, "__defaults__", None)).encode())


def _ours(obj: Any, module_name: str) -> bool:
    owner = getattr(obj, "__module__", None) or ""
    return owner == module_name or owner == "ntk_mlft" or owner.startswith("ntk_mlft.")


def _update_class(digest: Any, cls: type) -> None:
    digest.update(f"class {cls.__module__}.{cls.__qualname__}".encode())
    for key in sorted(vars(cls)):
        value = vars(cls)[key]
        if _is_plain(value):
            if not key.startswith("__"):  # class attributes (order, ...), not __doc__ / __module__
                digest.update(f"{key}={_const(value)}".encode())
        else:
            _update_callable(digest, value, f"attr {key}")


def _namespace(cls: type) -> dict[str, Any] | None:
    """The globals the class's methods actually run with (its module as loaded, even if the module
    was re-imported under the same name since), else its module in ``sys.modules``."""
    for value in vars(cls).values():
        func = getattr(getattr(value, "__func__", value), "fget", getattr(value, "__func__", value))
        if isinstance(func, types.FunctionType) and func.__module__ == cls.__module__:
            return func.__globals__
    module = sys.modules.get(cls.__module__)
    return None if module is None else vars(module)


def _update_module(digest: Any, namespace: dict[str, Any]) -> None:
    name = namespace.get("__name__", "")
    digest.update(f"module {name}".encode())
    for key in sorted(namespace):
        value = namespace[key]
        if key.startswith("__"):
            continue
        if _is_plain(value):
            digest.update(f"{key}={_const(value)}".encode())
        elif isinstance(value, type) and _ours(value, name):
            _update_class(digest, value)
        elif isinstance(value, types.FunctionType) and _ours(value, name):
            _update_callable(digest, value, f"def {key}")


def code_digest(*objects: Any) -> str:
    """SHA-256 hex digest of the code behind ``objects`` (classes and/or functions), see above."""
    digest = hashlib.sha256(f"python {sys.version_info[:2]}".encode())
    seen: set[int] = set()
    for obj in objects:
        if isinstance(obj, type):
            for cls in obj.__mro__:
                if cls.__module__ in ("builtins", "abc"):
                    continue
                _update_class(digest, cls)
                namespace = _namespace(cls)
                if namespace is not None and id(namespace) not in seen:
                    seen.add(id(namespace))
                    _update_module(digest, namespace)
        else:
            _update_callable(digest, obj, f"def {getattr(obj, '__qualname__', '')}")
    return digest.hexdigest()
