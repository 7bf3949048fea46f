"""Bounded YAML loading for config files and dataset cards.

`yaml.safe_load` builds no objects of arbitrary classes, but it still expands aliases: a
"billion laughs" document (nine levels of ten aliases each) is a few hundred bytes that becomes
10^9 nodes once validated or copied. `load_yaml` refuses, before anything is constructed,

* files larger than `max_bytes` (default 1 MiB),
* documents with more than `max_aliases` aliases (default 100), recursive aliases, or an
  alias-expanded size over `max_nodes` nodes (default 100,000),

by raising `UnsafeYAMLError` (a `yaml.YAMLError`, so callers that already report bad YAML report
these too, naming the file).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "ok.yaml").write_text("a: &x [1, 2]\\nb: *x\\n")
>>> load_yaml(d / "ok.yaml")
{'a': [1, 2], 'b': [1, 2]}
>>> lol = "a: &a [x, x, x, x, x, x, x, x, x, x]\\n" + "".join(
...     f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\\n" for p, c in zip("abcdefgh", "bcdefghi"))
>>> _ = (d / "lol.yaml").write_text(lol)
>>> try:
...     load_yaml(d / "lol.yaml")
... except UnsafeYAMLError as exc:
...     print(str(exc)[:40])
aliases expand to more than 100000 nodes
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_BYTES = 1 << 20
MAX_ALIASES = 100
MAX_NODES = 100_000


class UnsafeYAMLError(yaml.YAMLError):
    """The document is too large or its aliases expand beyond the bound."""


def _bounded_loader(max_aliases: int, max_nodes: int) -> type[yaml.SafeLoader]:
    class BoundedLoader(yaml.SafeLoader):
        aliases_seen = 0

        def compose_node(self, parent: Node | None, index: Any) -> Node | None:
            if self.check_event(yaml.AliasEvent):
                self.aliases_seen += 1
                if self.aliases_seen > max_aliases:
                    raise UnsafeYAMLError(f"more than {max_aliases} aliases (*name); write the values out")
            return super().compose_node(parent, index)

        def compose_document(self) -> Node | None:
            node = super().compose_document()
            if node is not None and self.aliases_seen:
                _check_expanded(node, max_nodes)
            return node

    return BoundedLoader


def _check_expanded(root: Node, max_nodes: int) -> None:
    """Refuse when the tree, with every alias expanded, has more than `max_nodes` nodes (memoised, linear)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise UnsafeYAMLError("recursive alias (a node contains itself)")
        active.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            for child in node.value:
                total += size(child)
                if total > max_nodes:
                    break
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > max_nodes:
                    break
        active.discard(key)
        if total > max_nodes:
            raise UnsafeYAMLError(f"aliases expand to more than {max_nodes} nodes (a 'billion laughs' document?)")
        sizes[key] = total
        return total

    size(root)


def load_yaml(path: str | Path, *, max_bytes: int = MAX_BYTES, max_aliases: int = MAX_ALIASES,
              max_nodes: int = MAX_NODES) -> Any:
    """Parse one YAML (or JSON) file with the bounds above; OSError if it cannot be read."""
    p = Path(path)
    with p.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnsafeYAMLError(f"file is larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeYAMLError(f"not UTF-8 text: {exc}") from None
    loader = _bounded_loader(max_aliases, max_nodes)(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
