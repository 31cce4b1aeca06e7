"""Read a graph file as YAML and remember where every node of it is.

The document is composed into nodes first (PyYAML keeps a start mark on each), checked for
keys given twice, then constructed like ``yaml.safe_load`` (the last of two equal keys wins).
Every value gets an RFC 6901 pointer, so a violation found on the data can be reported at the
line and column of the node it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from dynconform.contracts import (
    InputError,
    decode_text,
    json_pointer,
    read_input,
    yaml_problem,
)

#: More nodes than a graph file can hold: alias expansion ("billion laughs") past this point
#: is refused instead of validated.
MAX_NODES = 20_000


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and column in the source text."""

    line: int
    column: int

    @classmethod
    def of(cls, mark: yaml.Mark) -> Position:
        return cls(mark.line + 1, mark.column + 1)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A mapping key given a second time."""

    pointer: str
    key: str
    first: Position
    again: Position


@dataclass(slots=True)
class Located:
    """Where the value at a pointer starts, and where its key starts (mapping entries)."""

    value: Position
    key: Position | None = None


@dataclass(slots=True)
class GraphDocument:
    """A graph file read as YAML: its data, where each node is, and keys given twice."""

    name: str
    data: Any
    nodes: dict[str, Located] = field(default_factory=dict)
    duplicates: list[Duplicate] = field(default_factory=list)

    def position(self, pointer: str, *, key: bool = False) -> Position:
        """Where the node at ``pointer`` starts (its key with ``key=True``).

        A pointer to nothing falls back to its nearest existing parent.
        """
        current = pointer
        while True:
            located = self.nodes.get(current)
            if located is not None:
                if key and located.key is not None:
                    return located.key
                return located.value
            if not current:
                return Position(1, 1)
            current = current.rsplit("/", 1)[0]


def _key_text(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        value = yaml.constructor.SafeConstructor().construct_object(node, deep=True)
        return value if isinstance(value, str) else _scalar_key(value)
    return f"<key at line {node.start_mark.line + 1}>"  # a mapping or list used as a key


def _scalar_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _json_keys(value: Any) -> Any:
    """Mapping keys as strings, as in JSON (YAML allows numbers, booleans, null)."""
    if isinstance(value, dict):
        return {
            (k if isinstance(k, str) else _scalar_key(k)): _json_keys(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_json_keys(v) for v in value]
    return value


class _Walker:
    """Indexes the nodes of a composed document by JSON pointer."""

    def __init__(self, doc: GraphDocument) -> None:
        self.doc = doc
        self.count = 0
        self.active: set[int] = set()

    def duplicates(self, node: yaml.Node, path: list[object], seen: set[int]) -> None:
        # Runs before construction, so merge keys (<<) are still separate entries.
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, yaml.Node] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = _key_text(key_node)
                if key in first:
                    self.doc.duplicates.append(
                        Duplicate(
                            json_pointer(path),
                            key,
                            Position.of(first[key].start_mark),
                            Position.of(key_node.start_mark),
                        )
                    )
                else:
                    first[key] = key_node
                self.duplicates(value_node, [*path, key], seen)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.duplicates(item, [*path, index], seen)

    def index(self, node: yaml.Node, path: list[object], key: yaml.Node | None) -> None:
        self.count += 1
        if self.count > MAX_NODES:
            raise InputError(f"{self.doc.name}: more than {MAX_NODES:,} nodes (runaway aliases?)")
        if id(node) in self.active:
            mark = Position.of(node.start_mark)
            raise InputError(
                f"{self.doc.name}:{mark.line}:{mark.column}: an alias refers to a node that "
                "contains it (recursive data cannot be validated)"
            )
        self.doc.nodes[json_pointer(path)] = Located(
            Position.of(node.start_mark), Position.of(key.start_mark) if key else None
        )
        self.active.add(id(node))
        if isinstance(node, yaml.MappingNode):
            # After construction merged entries come first; later entries win, as in the data.
            for key_node, value_node in node.value:
                self.index(value_node, [*path, _key_text(key_node)], key_node)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.index(item, [*path, i], None)
        self.active.discard(id(node))


def parse_graph(text: str, name: str) -> GraphDocument:
    """Compose, index and construct one YAML document (``InputError`` when it is not YAML)."""
    doc = GraphDocument(name=name, data=None)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError(f"{name}: empty YAML document")
        walker = _Walker(doc)
        walker.duplicates(node, [], set())
        data = loader.construct_document(node)
        walker.index(node, [], None)
    except yaml.YAMLError as exc:
        raise InputError(yaml_problem(name, exc)) from None
    except RecursionError:
        raise InputError(f"{name}: nested too deeply") from None
    finally:
        loader.dispose()
    doc.data = _json_keys(data)
    return doc


def load_graph(path: str) -> GraphDocument:
    """Read a graph file (``-`` for standard input); ``InputError`` when it is unreadable."""
    raw, name = read_input(path)
    return parse_graph(decode_text(raw, name), name)
