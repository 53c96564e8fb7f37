"""The IR: Graph/Node/Value, op kinds, verifier, printer, analyses and lowering.

See README.md in this folder for what lives where.
"""

from symbiote.ir import dtypes, ops
from symbiote.ir.graph import Graph, Node, Shape, Value, topological_order

__all__ = ["Graph", "Node", "Value", "Shape", "dtypes", "ops", "topological_order"]
