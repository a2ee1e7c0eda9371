"""Safe YAML reading: a YAML 1.2 core-schema loader, limits on aliases and nesting, and a node walker that
remembers where every value and key is (for errors with line and column)."""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.errors import Problem, SpecError, child_path

MAX_ALIASES = 1000  # alias uses (*name) per document
MAX_ALIAS_EXPANSION = 100_000  # values that expanding aliases may add
MAX_DEPTH = 64  # nesting levels

TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {TAG + t for t in ("str", "int", "float", "bool", "null")}
_MERGE_TAG = TAG + "merge"

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # C parser when available


#: (scalar text, implicit flags) -> its tag, for texts up to _CACHED_TEXT characters, at most _CACHE_SIZE
_SCALAR_TAG_CACHE: dict[tuple[str, Any], str] = {}
_CACHED_TEXT = 64
_CACHE_SIZE = 8192


class CoreLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """A safe loader whose implicit types follow the YAML 1.2 core schema (``on``/``yes``/``y`` stay text)."""

    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> Any:
        """A scalar's tag, remembered by its text: the same short texts recur all through a file (``id``,
        ``plugin``, ``args``...), and matching them against the resolvers' patterns each time was the
        largest single cost of reading a long file. Right because CoreLoader has no path resolvers."""
        if kind is not ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = _SCALAR_TAG_CACHE.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(value) <= _CACHED_TEXT and len(_SCALAR_TAG_CACHE) < _CACHE_SIZE:
                _SCALAR_TAG_CACHE[key] = tag
        return tag

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        """Nothing to track: CoreLoader has no path resolvers (see ``resolve``)."""

    def ascend_resolver(self) -> None:
        """Nothing to track: CoreLoader has no path resolvers (see ``resolve``)."""

    def construct_core_int(self, node: ScalarNode) -> int:
        text = str(self.construct_scalar(node))
        sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text.lstrip("+"))
        if digits.startswith("0o"):
            return sign * int(digits[2:], 8)
        if digits.startswith("0x"):
            return sign * int(digits[2:], 16)
        return sign * int(digits, 10)


_CORE_RESOLVERS = [
    ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
    (
        "float",
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        "-+0123456789.",
    ),
    ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    ("merge", r"<<", "<"),
]
for _name, _regex, _first in _CORE_RESOLVERS:
    CoreLoader.add_implicit_resolver(TAG + _name, re.compile(f"^(?:{_regex})$"), list(_first))
CoreLoader.add_constructor(TAG + "int", CoreLoader.construct_core_int)
assert not CoreLoader.yaml_path_resolvers, "CoreLoader.resolve caches tags by text alone"


def parse_scalar(text: str) -> Any:
    """``text`` as a YAML 1.2 plain scalar (``3`` -> 3, ``true`` -> True, ``on`` -> "on"); else the text."""
    if not text.strip():
        return text
    try:
        value = yaml.load(text, Loader=CoreLoader)  # noqa: S506 - CoreLoader is a SafeLoader
    except yaml.YAMLError:
        return text
    return value if value is None or isinstance(value, str | int | float) else text


def position(mark: Any) -> tuple[int | None, int | None]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (None, None)


def problem_at(message: str, node: Node | None, path: str = "") -> Problem:
    line, column = position(node.start_mark if node is not None else None)
    return Problem(message, path, line, column)


def compose(text: str | bytes, source: str) -> list[Node]:
    loader = CoreLoader(text)
    nodes = []
    try:
        while loader.check_node():
            nodes.append(loader.get_node())
    except yaml.MarkedYAMLError as exc:
        message = str(exc.problem or exc.context)
        if _char_at(text, exc.problem_mark) == "\t":
            message += " (a tab: indent with spaces, not tabs)"
        if exc.context and exc.problem and "next token" not in exc.context:
            where = f" started on line {exc.context_mark.line + 1}" if exc.context_mark else ""
            message += f" ({exc.context}{where})"
        line, column = position(exc.problem_mark or exc.context_mark)
        raise SpecError([Problem(f"invalid YAML: {message}", "", line, column)], source) from None
    except yaml.reader.ReaderError as exc:
        raise SpecError([_reader_problem(text, exc)], source) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(f"invalid YAML: {exc}")], source) from None
    except RecursionError:  # the pure-Python parser on absurd nesting (libyaml stops at 1000 levels)
        too_deep = Problem(f"the data is nested too deeply (more than {MAX_DEPTH} levels)")
        raise SpecError([too_deep], source) from None
    finally:
        loader.dispose()
    return nodes


def _reader_problem(text: str | bytes, exc: yaml.reader.ReaderError) -> Problem:
    """Bad bytes or a forbidden character: the reader only knows the offset, so count lines up to it."""
    before = text[: exc.position]
    newline = b"\n" if isinstance(before, bytes) else "\n"
    line = before.count(newline) + 1  # type: ignore[arg-type]
    column = len(before) - (before.rfind(newline) + 1) + 1  # type: ignore[arg-type]
    if exc.encoding not in ("?", "unicode") or "octet" in exc.reason:  # bytes that do not decode
        message = f"the file is not valid UTF-8 text ({exc.reason})"
    else:
        message = f"the character #x{exc.character:04x} is not allowed ({exc.reason})"
    return Problem(message, "", line, column)


def _char_at(text: str | bytes, mark: Any) -> str:
    if mark is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = text.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    return line[mark.column : mark.column + 1]


class Refused(Exception):
    def __init__(self, message: str, node: Node) -> None:
        super().__init__(message)
        self.node = node


def check_graph(root: Node) -> None:
    """Refuse alias bombs, recursive aliases and absurd nesting before anything is expanded."""
    sizes: dict[int, tuple[int, int]] = {}  # node id -> (values once expanded, height)
    on_path: set[int] = set()
    aliases = 0

    def measure(node: Node, depth: int) -> tuple[int, int]:
        nonlocal aliases
        key = id(node)
        if key in on_path:
            raise Refused(
                "an alias refers to a collection that contains it (recursive aliases are not allowed)", node
            )
        if key in sizes:
            aliases += 1
            if aliases > MAX_ALIASES:
                raise Refused(f"aliases are limited to {MAX_ALIASES} per document", node)
        else:
            if depth > MAX_DEPTH:
                raise Refused(f"the data is nested too deeply (more than {MAX_DEPTH} levels)", node)
            on_path.add(key)
            size, height = 1, 0
            children = node.value if isinstance(node, SequenceNode) else []
            if isinstance(node, MappingNode):
                children = [n for pair in node.value for n in pair]
            for child in children:
                child_size, child_height = measure(child, depth + 1)
                size, height = size + child_size, max(height, child_height + 1)
            on_path.discard(key)
            sizes[key] = (size, height)
        size, height = sizes[key]
        if depth + height > MAX_DEPTH:
            raise Refused(f"the data is nested too deeply (more than {MAX_DEPTH} levels)", node)
        return size, height

    total, _ = measure(root, 0)
    if total - len(sizes) > MAX_ALIAS_EXPANSION:
        raise Refused(
            f"aliases are limited: expanding them would add {total - len(sizes):,} values, "
            f"more than the {MAX_ALIAS_EXPANSION:,} allowed",
            root,
        )


class NodeTree:
    """Builds plain data from nodes, remembering where every value and key is, by path."""

    def __init__(self, loader: CoreLoader) -> None:
        self.loader = loader
        self.marks: dict[str, Node] = {}
        self.key_marks: dict[str, Node] = {}
        self.problems: list[Problem] = []
        self._depth = 0

    def build(self, node: Node, path: str = "") -> Any:
        """The plain data of ``node``, whose key path (``format_path`` style) is ``path``. Raises Refused
        past ``MAX_DEPTH`` levels (``check_graph`` does too, and also bounds what aliases expand to)."""
        self.marks.setdefault(path, node)
        if self._depth > MAX_DEPTH:  # collections around this node
            raise Refused(f"the data is nested too deeply (more than {MAX_DEPTH} levels)", node)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        self._depth += 1
        try:
            if isinstance(node, SequenceNode):
                if node.tag != TAG + "seq":
                    self.problems.append(problem_at(_tag_message(node.tag), node, path))
                return [self.build(child, f"{path}[{i}]") for i, child in enumerate(node.value)]
            if node.tag != TAG + "map":
                self.problems.append(problem_at(_tag_message(node.tag), node, path))
            assert isinstance(node, MappingNode)  # PyYAML's third and last kind of node
            return self._mapping(node, path)
        finally:
            self._depth -= 1

    def _scalar(self, node: ScalarNode, path: str) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self.problems.append(problem_at(_tag_message(node.tag), node, path))
            return node.value
        try:
            return self.loader.yaml_constructors[node.tag](self.loader, node)
        except (ValueError, yaml.YAMLError):
            kind = node.tag.removeprefix(TAG)
            self.problems.append(problem_at(f"'{node.value}' is not a valid {kind}", node, path))
            return node.value

    def _mapping(self, node: MappingNode, parent: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        explicit: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for key, value in self._merged(value_node, parent).items():
                    if key not in explicit:
                        result[key] = value
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.append(
                    problem_at("a key must be a plain name, not a list or a mapping", key_node)
                )
                continue
            key = key_node.value
            path = child_path(parent, key)
            if key in explicit:
                first = explicit[key].start_mark.line + 1
                self.problems.append(
                    problem_at(f"duplicate key '{key}' (first used on line {first})", key_node, path)
                )
                continue
            explicit[key] = key_node
            self.key_marks[path] = key_node
            result[key] = self.build(value_node, path)
        return result

    def _merged(self, node: Node, parent: str) -> dict[str, Any]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):  # earlier sources win, as in YAML 1.1 merge keys
            if not isinstance(source, MappingNode):
                self.problems.append(
                    problem_at("'<<' merges a mapping (or a list of mappings) into this one", source)
                )
                continue
            merged.update(self._mapping(source, parent))
        return merged


def _tag_message(tag: str) -> str:
    shown = "!!" + tag.removeprefix(TAG) if tag.startswith(TAG) else tag
    return f"the tag '{shown}' is not allowed: a project file holds only plain values, lists and mappings"
