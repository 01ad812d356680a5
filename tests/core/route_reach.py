"""What a route can answer, read from its code.

From a route's endpoint and dependencies, every function of ``app`` it calls (or merely names: a
function passed along is taken as called) is read, and collected:

* the domain errors raised (``raise SomeError(...)``) that no ``except`` on the way stops (one that
  does not re-raise), each with the codes the raise can give: the class's own, a ``code=`` literal,
  both branches of a conditional, a mapping's values, or the codes of the error it translates
  (``code=exc.code`` in ``except JoseError as exc``: every code a ``JoseError`` escaping the ``try``
  body is raised with — a code a function is handed is every literal its callers hand it);
* the statuses a response is built with (``status_code=``, ``status.HTTP_…``) and its media types
  (``media_type=``).

Static and generous: both branches of every condition are taken. ``tests/core/test_core_openapi.py``
holds the OpenAPI document to what is found here.
"""

import ast
import builtins
import functools
import importlib
import inspect
import sys
import textwrap
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette import status as http_status

from app.core.errors import PROBLEM_JSON, DomainError

ROOT = Path(__file__).resolve().parents[2]
_MISSING = object()
_Binding = tuple[tuple[str, str], ...]  # the string literals a call hands its callee, by parameter


@dataclass(frozen=True)
class Raised:
    error: type[BaseException]
    codes: frozenset[str]
    where: str  # app/…/module.py:line


@dataclass
class Found:
    raised: set[Raised] = field(default_factory=set)  # domain errors only
    statuses: set[int] = field(default_factory=set)
    media_types: set[str] = field(default_factory=set)
    unreadable: set[str] = field(default_factory=set)  # codes that could not be read, by place


@dataclass
class _Site:
    """A ``raise`` whose codes are read when asked (a translated code needs what its ``try`` lets out)."""

    error: type[BaseException]
    code: ast.expr | None  # the code= expression (for a foreign error: its code argument)
    where: str
    walker: "_Walker"
    bound: dict[str, tuple[tuple[type, ...], "_Summary"]]  # except-names: their classes and their try body


@dataclass
class _Summary:
    """Statements read once: their raises and the functions they reach, each under the errors caught there."""

    raises: list[tuple[_Site, tuple[type, ...]]] = field(default_factory=list)
    calls: list[tuple[Callable, tuple[type, ...], "_Binding"]] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)
    media_types: set[str] = field(default_factory=set)


class Reader:
    """Reads functions of ``packages`` and says what escapes them."""

    def __init__(self, packages: tuple[str, ...] = ("app",)):
        self.packages = packages
        self.summaries: dict[Callable, _Summary] = {}
        self.escapes: dict[tuple[Callable, _Binding], set[Raised]] = {}
        self.unreadable: set[str] = set()

    def reach(self, roots: Iterable[Callable]) -> Found:
        """Everything ``roots`` (an endpoint and its dependencies) can answer."""
        roots = [inspect.unwrap(r) for r in roots]
        found = Found()
        before = set(self.unreadable)
        for root in roots:
            found.raised |= {r for r in self.escaping(root) if issubclass(r.error, DomainError)}
        for fn in self.reachable(roots):
            summary = self.summary(fn)
            found.statuses |= summary.statuses
            found.media_types |= summary.media_types
        found.unreadable = self.unreadable - before
        return found

    def reachable(self, roots: list[Callable]) -> list[Callable]:
        seen: dict[Callable, None] = {}
        todo = list(roots)
        while todo:
            fn = todo.pop()
            if fn not in seen:
                seen[fn] = None
                todo.extend(callee for callee, _, _ in self.summary(fn).calls)
        return list(seen)

    def escaping(self, fn: Callable, binding: _Binding = (), active: set | None = None) -> set[Raised]:
        """The errors ``fn`` lets out when called with ``binding`` (a recursive call adds nothing new)."""
        key = (fn, binding)
        if key in self.escapes:
            return self.escapes[key]
        active = active if active is not None else set()
        if key in active:
            return set()
        active.add(key)
        out = self.escaping_from(self.summary(fn), binding, active)
        active.discard(key)
        self.escapes[key] = out
        return out

    def escaping_from(self, summary: _Summary, binding: _Binding, active: set) -> set[Raised]:
        out: set[Raised] = set()
        for site, caught in summary.raises:
            raised = self.read(site, binding, active)
            if not _caught(raised.error, caught):
                out.add(raised)
        for callee, caught, handed in summary.calls:
            out |= {r for r in self.escaping(callee, handed, active) if not _caught(r.error, caught)}
        return out

    def read(self, site: _Site, binding: _Binding = (), active: set | None = None) -> Raised:
        if site.code is None:
            codes = {site.error.code} if issubclass(site.error, DomainError) else set()
        else:
            codes = self.codes(site, site.code, dict(binding), active if active is not None else set())
        if codes is None:
            where = f"{site.where} {site.error.__name__}(code={ast.unparse(site.code) if site.code else ''})"
            if issubclass(site.error, DomainError):
                self.unreadable.add(where)
            codes = {f"<unreadable: {where}>"}  # a foreign error's, if something translates it
        return Raised(site.error, frozenset(codes), site.where)

    def codes(self, site: _Site, node: ast.expr, binding: dict[str, str], active: set) -> set[str] | None:
        """The codes an expression can give, or None when it cannot be read."""
        walker, default = site.walker, site.error.code if issubclass(site.error, DomainError) else None
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                return {node.value}
            return {default} if node.value is None and default else None
        if isinstance(node, ast.IfExp):
            body, orelse = (self.codes(site, n, binding, active) for n in (node.body, node.orelse))
            return None if body is None or orelse is None else body | orelse
        if isinstance(node, ast.Attribute) and node.attr == "code" and isinstance(node.value, ast.Name):
            if node.value.id not in site.bound:
                return None
            classes, body = site.bound[node.value.id]
            translated = [
                r
                for r in self.escaping_from(body, tuple(binding.items()), active)
                if _caught(r.error, classes)
            ]
            return set().union(*(r.codes for r in translated))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(mapping := walker.resolve(node.func.value), dict)
            and len(node.args) == 2
        ):
            fallback = self.codes(site, node.args[1], binding, active)
            if fallback is None:
                return None
            if ast.dump(node.args[0]) == ast.dump(
                node.args[1]
            ):  # .get(code, code): the unmapped ones pass through
                fallback -= set(mapping)
            return set(mapping.values()) | fallback
        if isinstance(node, ast.Name) and node.id in walker.parameters:
            if node.id in binding:
                return {binding[node.id]}
            return _passed_literals(walker.function, walker.parameters.index(node.id), node.id)
        value = walker.resolve(node)
        return {value} if isinstance(value, str) else None

    def summary(self, fn: Callable) -> _Summary:
        if fn not in self.summaries:
            self.summaries[fn] = _Summary()  # a recursive call sees an empty summary while this one is read
            self.summaries[fn] = self.read_function(fn)
        return self.summaries[fn]

    def read_function(self, fn: Callable) -> _Summary:
        summary = _Summary()
        node = _function_node(fn)
        if node is None:
            return summary
        namespace = dict(getattr(fn, "__globals__", {}))
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
            try:
                namespace[name] = cell.cell_contents
            except ValueError:  # an empty cell
                pass
        path = Path(inspect.getsourcefile(fn) or "?")
        where = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        _Walker(self, namespace, where, fn.__code__.co_firstlineno - 1, node).body(node.body, summary)
        return summary

    def follows(self, value: Any) -> bool:
        fn = inspect.unwrap(value) if callable(value) else value
        if not isinstance(fn, types.FunctionType):
            return False
        module = fn.__module__ or ""
        return any(module == p or module.startswith(p + ".") for p in self.packages)


def reach(roots: Iterable[Callable], packages: tuple[str, ...] = ("app",)) -> Found:
    return Reader(packages).reach(roots)


def raise_sites(package: str = "app") -> Iterator[tuple[Raised, str]]:
    """Every ``raise`` of a domain error in the package's modules (with its function), and what codes it gives."""
    reader = Reader((package,))
    for path in sorted((ROOT / package).rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        module = sys.modules.get(name) or _import(name)
        if module is None:
            continue
        for node in ast.walk(_parse_file(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                summary = _Summary()
                _Walker(reader, vars(module), str(path.relative_to(ROOT)), 0, node).body(node.body, summary)
                for site, _ in summary.raises:
                    raised = reader.read(site)
                    if issubclass(raised.error, DomainError):
                        yield raised, f"{name}.{node.name}"
    for where in sorted(reader.unreadable):
        yield Raised(DomainError, frozenset({f"<unreadable: {where}>"}), where), "?"


def _import(name: str) -> types.ModuleType | None:
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a module that needs optional extras is no route's
        return None


def _caught(error: type, caught: tuple[type, ...]) -> bool:
    return any(issubclass(error, c) for c in caught)


def _function_node(fn: Callable) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):  # no source, or a lambda cut out of its line
        return None
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else None


@functools.cache
def _parse_file(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


class _Walker:
    """Reads the statements of one function into a summary, knowing which errors each place catches."""

    def __init__(
        self,
        reader: Reader,
        namespace: dict[str, Any],
        where: str,
        line_offset: int,
        function: ast.FunctionDef | ast.AsyncFunctionDef,
    ):
        self.reader = reader
        self.namespace = namespace
        self.where = where
        self.offset = line_offset
        self.function = function
        arguments = function.args
        self.parameters = [a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs]

    def body(self, statements: list[ast.stmt], summary: _Summary, bound: dict | None = None) -> None:
        for statement in statements:
            self.visit(statement, summary, (), bound or {})

    def visit(self, node: ast.AST, summary: _Summary, caught: tuple[type, ...], bound: dict) -> None:
        if isinstance(node, ast.Try | ast.TryStar):
            tried = _Summary()  # what the try body lets out, for the handlers that translate it
            for statement in node.body:
                self.visit(statement, tried, (), bound)
            stops: list[type] = []
            for handler in node.handlers:
                classes = self.classes(handler.type) if handler.type is not None else (BaseException,)
                if not _reraises(handler):
                    stops.extend(classes)
                inner = {**bound, handler.name: (classes, tried)} if handler.name else bound
                for statement in handler.body:
                    self.visit(statement, summary, caught, inner)
            for statement in node.body:
                self.visit(statement, summary, caught + tuple(stops), bound)
            for statement in node.orelse + node.finalbody:
                self.visit(statement, summary, caught, bound)
            return
        if isinstance(node, ast.Raise) and node.exc is not None:
            self.raised(node.exc, summary, caught, bound)
        elif isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load):
            self.referenced(node, summary, caught)
        elif isinstance(node, ast.Subscript | ast.For | ast.comprehension):  # table[key](…), for f in table
            self.looked_up(node.value if isinstance(node, ast.Subscript) else node.iter, summary, caught)
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "status_code":
                    summary.statuses |= self.ints(keyword.value)
                elif keyword.arg == "media_type":
                    summary.media_types |= self.strings(keyword.value)
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "values", "items"):
                self.looked_up(node.func.value, summary, caught)
            callee = self.resolve(node.func)
            if self.reader.follows(callee):  # a call: with the literals it hands over
                summary.calls.append((inspect.unwrap(callee), caught, _binding(callee, node)))
                for child in [*node.args, *node.keywords]:
                    self.visit(child, summary, caught, bound)
                return
        elif isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Attribute) and t.attr == "status_code" for t in node.targets):
                summary.statuses |= self.ints(node.value)
        for child in ast.iter_child_nodes(node):
            self.visit(child, summary, caught, bound)

    def resolve(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Name):
            value = self.namespace.get(node.id, _MISSING)
            return getattr(builtins, node.id, _MISSING) if value is _MISSING else value
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            if isinstance(base, types.ModuleType | type):
                return getattr(base, node.attr, _MISSING)
        return _MISSING

    def classes(self, node: ast.AST) -> tuple[type, ...]:
        nodes = node.elts if isinstance(node, ast.Tuple) else [node]
        return tuple(c for c in map(self.resolve, nodes) if isinstance(c, type))

    def ints(self, node: ast.AST) -> set[int]:
        if isinstance(node, ast.IfExp):
            return self.ints(node.body) | self.ints(node.orelse)
        value = node.value if isinstance(node, ast.Constant) else self.resolve(node)
        return {value} if isinstance(value, int) and not isinstance(value, bool) else set()

    def strings(self, node: ast.AST) -> set[str]:
        if isinstance(node, ast.IfExp):
            return self.strings(node.body) | self.strings(node.orelse)
        value = node.value if isinstance(node, ast.Constant) else self.resolve(node)
        return {value} if isinstance(value, str) else set()

    def referenced(self, node: ast.Name | ast.Attribute, summary: _Summary, caught: tuple[type, ...]) -> None:
        value = self.resolve(node)
        if isinstance(node, ast.Attribute) and self.resolve(node.value) is http_status:
            if isinstance(value, int):
                summary.statuses.add(value)
            return
        if self.reader.follows(value):  # called, or handed on to be called
            summary.calls.append((inspect.unwrap(value), caught, ()))

    def looked_up(self, node: ast.AST, summary: _Summary, caught: tuple[type, ...]) -> None:
        """Functions taken out of a table (a dict of hooks, a tuple of checks) may all be called."""
        table = self.resolve(node)
        for candidate in (
            table.values() if isinstance(table, dict) else table if isinstance(table, list | tuple) else ()
        ):
            if self.reader.follows(candidate):
                summary.calls.append((inspect.unwrap(candidate), caught, ()))

    def raised(self, node: ast.expr, summary: _Summary, caught: tuple[type, ...], bound: dict) -> None:
        call = node if isinstance(node, ast.Call) else None
        error = self.resolve(call.func if call else node)
        if not isinstance(error, type) or not issubclass(error, BaseException):
            return
        if issubclass(error, DomainError):
            code = next((k.value for k in call.keywords if k.arg == "code"), None) if call else None
        else:  # a foreign error that carries a code (JoseError(code, detail)) is followed for translations
            position = _code_position(error)
            if position is None or call is None:
                return
            code = next((k.value for k in call.keywords if k.arg == "code"), None)
            code = code or (call.args[position] if len(call.args) > position else None)
        summary.raises.append(
            (_Site(error, code, f"{self.where}:{node.lineno + self.offset}", self, bound), caught)
        )


def _binding(callee: Callable, call: ast.Call) -> _Binding:
    try:
        parameters = list(inspect.signature(callee).parameters)
    except (TypeError, ValueError):
        return ()
    handed = {
        parameters[i]: a.value
        for i, a in enumerate(call.args[: len(parameters)])
        if isinstance(a, ast.Constant) and isinstance(a.value, str)
    }
    handed |= {
        k.arg: k.value.value
        for k in call.keywords
        if k.arg and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)
    }
    return tuple(sorted(handed.items()))


def _reraises(handler: ast.ExceptHandler) -> bool:
    return any(
        isinstance(node, ast.Raise)
        and (node.exc is None or (isinstance(node.exc, ast.Name) and node.exc.id == handler.name))
        for node in ast.walk(handler)
    )


@functools.cache
def _code_position(error: type) -> int | None:
    try:
        parameters = list(inspect.signature(error).parameters)
    except (TypeError, ValueError):
        return None
    return parameters.index("code") if "code" in parameters else None


def _passed_literals(
    function: ast.FunctionDef | ast.AsyncFunctionDef, position: int, name: str
) -> set[str] | None:
    """Every literal the callers of ``function`` (found by name, anywhere in ``app``) hand it as this parameter."""
    values: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(_parse_file(path)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if (func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)) != function.name:
                continue
            value = next((k.value for k in node.keywords if k.arg == name), None)
            value = value or (node.args[position] if len(node.args) > position else None)
            if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
                return None
            values.add(value.value)
    return values or None


def is_problem(media_type: str) -> bool:
    return media_type.split(";")[0].strip() == PROBLEM_JSON
