"""Graph, Node and Value: the mutable dataflow IR (in the style of onnx-ir).

A :class:`Value` is an edge: it knows its producer node (``None`` for graph inputs and
constants) and its uses ``(node, input_index)``. A constant (an ONNX initializer or a
folded ``Constant``) is a Value with ``const`` set to a numpy array and no producer.

A :class:`Node` keeps its ONNX op type, domain and attributes (so ``save()`` can write it
back exactly) plus ``op``, the canonical IR op kind from :mod:`symbiote.ir.ops` that
analyses and cost models read, and ``meta``, a free dict where passes leave annotations
(fusion group, sparsity, bit-width).

Mutations go through the Graph/Node methods below so that producer/use links stay
consistent; ``verify()`` checks them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from symbiote.ir import dtypes

Shape = tuple[int, ...]


@dataclass(eq=False)
class Value:
    """A tensor edge of the graph."""

    name: str
    shape: Shape | None = None
    dtype: str = "float32"
    const: np.ndarray | None = None
    producer: Node | None = field(default=None, repr=False)
    uses: list[tuple[Node, int]] = field(default_factory=list, repr=False)

    @property
    def is_const(self) -> bool:
        return self.const is not None

    @property
    def rank(self) -> int:
        return len(self.shape) if self.shape is not None else -1

    @property
    def size(self) -> int:
        """Number of elements (0 if the shape is unknown)."""
        if self.shape is None:
            return 0
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * dtypes.itemsize(self.dtype)

    def consumers(self) -> list[Node]:
        seen: dict[int, Node] = {}
        for node, _ in self.uses:
            seen.setdefault(id(node), node)
        return list(seen.values())

    def __repr__(self) -> str:  # short, readable
        kind = "const " if self.is_const else ""
        return f"Value({kind}{self.name!r}, {self.dtype}{list(self.shape) if self.shape is not None else '?'})"


@dataclass(eq=False)
class Node:
    """An operation. ``inputs`` may hold ``None`` for omitted optional ONNX inputs."""

    op: str
    onnx_op: str
    name: str
    inputs: list[Value | None] = field(default_factory=list)
    outputs: list[Value] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    domain: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def input(self, i: int) -> Value | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def set_input(self, i: int, value: Value | None) -> None:
        """Replace input ``i`` keeping use lists consistent."""
        old = self.inputs[i]
        if old is not None:
            old.uses.remove((self, i))
        self.inputs[i] = value
        if value is not None:
            value.uses.append((self, i))

    @property
    def output(self) -> Value:
        return self.outputs[0]

    def __repr__(self) -> str:
        return f"Node({self.name!r}, {self.onnx_op}->{self.op})"


class Graph:
    """A dataflow graph. ``nodes`` is kept in topological order by the mutators."""

    def __init__(
        self,
        name: str = "graph",
        *,
        opset: dict[str, int] | None = None,
        ir_version: int = 10,
        producer: str = "symbiote",
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.nodes: list[Node] = []
        self.constants: dict[str, Value] = {}
        self.opset: dict[str, int] = dict(opset or {"": 21})
        self.ir_version = ir_version
        self.producer = producer
        self.metadata: dict[str, str] = dict(metadata or {})
        self.meta: dict[str, Any] = {}
        self._names: set[str] = set()
        self._counter = itertools.count()

    # ---------------------------------------------------------------- naming
    def unique_name(self, base: str) -> str:
        """A value/node name not used yet in this graph."""
        name = base
        while name in self._names:
            name = f"{base}_{next(self._counter)}"
        self._names.add(name)
        return name

    def _claim(self, name: str) -> None:
        self._names.add(name)

    # ---------------------------------------------------------------- building
    def add_input(self, name: str, shape: Shape | None, dtype: str = "float32") -> Value:
        v = Value(name, tuple(shape) if shape is not None else None, dtype)
        self._claim(name)
        self.inputs.append(v)
        return v

    def add_const(self, name: str, array: np.ndarray, *, unique: bool = True) -> Value:
        array = np.asarray(array)
        if unique:
            name = self.unique_name(name)
        else:
            self._claim(name)
        v = Value(name, tuple(array.shape), dtypes.from_numpy(array.dtype), const=array)
        self.constants[name] = v
        return v

    def add_node(
        self,
        op: str,
        onnx_op: str,
        inputs: Sequence[Value | None],
        outputs: Sequence[Value | str],
        *,
        name: str | None = None,
        attrs: dict[str, Any] | None = None,
        domain: str = "",
        meta: dict[str, Any] | None = None,
        before: Node | None = None,
        after: Node | None = None,
    ) -> Node:
        """Create a node; output names become fresh Values (shape filled by shape inference).

        The node is appended at the end, or placed before/after a given node. Callers that
        insert out of order must call :meth:`sort` afterwards.
        """
        node = Node(op, onnx_op, self.unique_name(name or onnx_op.lower()), attrs=dict(attrs or {}), domain=domain, meta=dict(meta or {}))
        for i, v in enumerate(inputs):
            node.inputs.append(v)
            if v is not None:
                v.uses.append((node, i))
        for o in outputs:
            if isinstance(o, str):
                o = Value(self.unique_name(o))
            else:
                self._claim(o.name)
            o.producer = node
            node.outputs.append(o)
        if before is not None:
            self.nodes.insert(self.nodes.index(before), node)
        elif after is not None:
            self.nodes.insert(self.nodes.index(after) + 1, node)
        else:
            self.nodes.append(node)
        return node

    def remove_node(self, node: Node) -> None:
        """Remove a node. Its outputs must have no remaining uses (nor be graph outputs)."""
        for o in node.outputs:
            if o.uses or any(o is g for g in self.outputs):
                raise ValueError(f"cannot remove {node.name}: output {o.name} is still used")
        for i, v in enumerate(node.inputs):
            if v is not None:
                v.uses.remove((node, i))
        node.inputs = [None] * len(node.inputs)
        self.nodes.remove(node)

    def replace_all_uses(self, old: Value, new: Value) -> None:
        """Point every use of ``old`` (and graph outputs) at ``new``."""
        for node, i in list(old.uses):
            node.set_input(i, new)
        for k, g in enumerate(self.outputs):
            if g is old:
                # keep the graph output's public name
                self.outputs[k] = new
        self._drop_const_if_unused(old)

    def _drop_const_if_unused(self, v: Value) -> None:
        if v.is_const and not v.uses and self.constants.get(v.name) is v:
            del self.constants[v.name]

    def prune_unused_constants(self) -> int:
        reads = self.scope_reads()
        dead = [k for k, v in self.constants.items() if not v.uses and not self.is_output(v) and k not in reads]
        for k in dead:
            del self.constants[k]
        return len(dead)

    # ---------------------------------------------------------------- queries
    def values(self) -> Iterator[Value]:
        """Every value once: inputs, constants, node outputs."""
        yield from self.inputs
        yield from self.constants.values()
        for n in self.nodes:
            yield from n.outputs

    def value(self, name: str) -> Value:
        for v in self.values():
            if v.name == name:
                return v
        raise KeyError(name)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self.nodes))

    def __len__(self) -> int:
        return len(self.nodes)

    def is_output(self, v: Value) -> bool:
        return any(v is o for o in self.outputs)

    def scope_reads(self) -> frozenset[str]:
        """Names that subgraph bodies (If/Loop/Scan) read from this graph by name.

        Such values are used even when no node input points at them: they must keep
        their names and must not be removed.
        """
        return frozenset(name for n in self.nodes for name in n.meta.get("_outer_inputs", ()))

    # ---------------------------------------------------------------- order
    def sort(self) -> None:
        """Re-sort ``nodes`` topologically (stable: keeps the current order where legal).

        Raises :class:`symbiote.errors.InvalidModelError` on a cycle.
        """
        self.nodes = topological_order(self.nodes)

    def copy(self) -> Graph:
        """A structural copy: new Values/Nodes, weights shared (treat arrays as immutable)."""
        g = Graph(self.name, opset=self.opset, ir_version=self.ir_version, producer=self.producer, metadata=self.metadata)
        g.meta = _copy_meta(self.meta)
        g._names = set(self._names)
        vmap: dict[int, Value] = {}

        def cv(v: Value) -> Value:
            nv = vmap.get(id(v))
            if nv is None:
                nv = Value(v.name, v.shape, v.dtype, const=v.const)
                vmap[id(v)] = nv
            return nv

        g.inputs = [cv(v) for v in self.inputs]
        g.constants = {k: cv(v) for k, v in self.constants.items()}
        for n in self.nodes:
            nn = Node(n.op, n.onnx_op, n.name, attrs=dict(n.attrs), domain=n.domain, meta=_copy_meta(n.meta))
            for i, v in enumerate(n.inputs):
                if v is None:
                    nn.inputs.append(None)
                else:
                    nv = cv(v)
                    nn.inputs.append(nv)
                    nv.uses.append((nn, i))
            for o in n.outputs:
                no = cv(o)
                no.producer = nn
                nn.outputs.append(no)
            g.nodes.append(nn)
        g.outputs = [cv(v) for v in self.outputs]
        return g

    def verify(self) -> None:
        """Check links, acyclicity, shapes and dtypes; raise InvalidModelError naming the fault."""
        from symbiote.ir.verify import verify

        verify(self)

    def __str__(self) -> str:
        from symbiote.ir.printer import format_graph

        return format_graph(self)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self.nodes)} nodes, {len(self.constants)} constants)"


def _copy_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in meta.items()}


def topological_order(nodes: Iterable[Node]) -> list[Node]:
    """Kahn's algorithm, stable with respect to the given order."""
    from symbiote.errors import InvalidModelError

    nodes = list(nodes)
    index = {id(n): i for i, n in enumerate(nodes)}
    # names read from the outer scope by subgraph bodies (If/Loop/Scan) are dependencies too
    producer_of = {o.name: index[id(n)] for n in nodes for o in n.outputs}
    indeg = [0] * len(nodes)
    succ: list[list[int]] = [[] for _ in nodes]
    for i, n in enumerate(nodes):
        preds = {index[id(v.producer)] for v in n.inputs if v is not None and v.producer is not None and id(v.producer) in index}
        preds.update(producer_of[name] for name in n.meta.get("_outer_inputs", ()) if name in producer_of)
        preds.discard(i)
        for p in preds:
            succ[p].append(i)
        indeg[i] = len(preds)
    import heapq

    ready = [i for i, d in enumerate(indeg) if d == 0]
    heapq.heapify(ready)
    out: list[Node] = []
    while ready:
        i = heapq.heappop(ready)
        out.append(nodes[i])
        for s in succ[i]:
            indeg[s] -= 1
            if indeg[s] == 0:
                heapq.heappush(ready, s)
    if len(out) != len(nodes):
        stuck = [nodes[i].name for i, d in enumerate(indeg) if d > 0]
        raise InvalidModelError(f"graph has a cycle through node(s): {', '.join(stuck[:5])}")
    return out
