"""``fuse-layers(max_on_chip_kb=...)``: accelerator layer fusion (annotation only, exact).

Chains of consecutive layers whose intermediate tensor fits in ``max_on_chip_kb`` of
on-chip memory are put in one fusion group, in the spirit of Stream's layer-fused
scheduling (Symons et al., "Stream: A Modeling Framework for Fine-grained Layer Fusion
on Multi-core DNN Accelerators", ISPASS 2023). Marks on ``node.meta``:

* ``fusion_group`` (int): the same id for every layer of a chain (and for the activation
  nodes fused into them, see ``fuse-activations``);
* ``output_on_chip`` (bool): this layer's output stays on chip (its only consumer is the
  next layer of the chain);
* ``input_on_chip`` (bool): this layer's first activation input comes from on chip.

A tensor stays on chip when it has exactly one consuming layer, is not a model output,
and its size in bytes is at most ``max_on_chip_kb * 1024``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from symbiote.errors import PassError
from symbiote.ir.graph import Graph, Node, Value, topological_order
from symbiote.passes.base import Pass


def _effective_output(owner: Node, members: list[Node]) -> Value:
    """The output of an owner's fused chain that leaves the chain."""
    inside = {id(n) for n in members} | {id(owner)}
    for n in reversed([owner, *members]):
        if not all(id(c) in inside for c in n.outputs[0].consumers()) or not n.outputs[0].uses:
            return n.outputs[0]
    return members[-1].outputs[0] if members else owner.outputs[0]


@dataclass(frozen=True)
class FuseLayers(Pass):
    """Group chains of layers whose intermediate tensors fit on chip."""

    max_on_chip_kb: float = 256.0

    name: ClassVar[str] = "fuse-layers"
    exact: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not self.max_on_chip_kb >= 0:
            raise PassError(f"fuse-layers: max_on_chip_kb must be >= 0, got {self.max_on_chip_kb}")

    def apply(self, graph: Graph) -> tuple[bool, dict[str, Any]]:
        budget = self.max_on_chip_kb * 1024
        by_name = {n.name: n for n in graph.nodes}
        order = topological_order(graph.nodes)
        members: dict[str, list[Node]] = {}
        for n in order:
            owner = n.meta.get("fused_into")
            if owner in by_name:
                members.setdefault(owner, []).append(n)
        layers = [n for n in order if n.meta.get("fused_into") not in by_name]
        owner_of: dict[int, Node] = {}
        for n in layers:
            owner_of[id(n)] = n
            for m in members.get(n.name, []):
                owner_of[id(m)] = n
        eff = {id(n): _effective_output(n, members.get(n.name, [])) for n in layers}
        group: dict[int, int] = {}
        next_id = 0
        on_chip = 0
        for n in layers:
            n.meta["input_on_chip"] = False
            n.meta["output_on_chip"] = False
            src = next((v for v in n.inputs if v is not None and not v.is_const), None)
            joined = False
            if src is not None and src.producer is not None and id(src.producer) in owner_of:
                p = owner_of[id(src.producer)]
                consumers = {id(owner_of.get(id(c), c)) for c in src.consumers()}
                if (eff[id(p)] is src and consumers == {id(n)} and not graph.is_output(src)
                        and src.nbytes <= budget and src.shape is not None):
                    group[id(n)] = group[id(p)]
                    p.meta["output_on_chip"] = True
                    n.meta["input_on_chip"] = True
                    joined = True
                    on_chip += 1
            if not joined:
                group[id(n)] = next_id
                next_id += 1
            n.meta["fusion_group"] = group[id(n)]
            for m in members.get(n.name, []):
                m.meta["fusion_group"] = group[id(n)]
        return bool(layers), {"groups": next_id, "layers": len(layers), "on_chip_tensors": on_chip}
