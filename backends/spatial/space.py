"""The ``spatial`` template's hardware: its knobs (:data:`SPACE`) and spatial dataflows.

The accelerator (Eyeriss / Simba / NVDLA-like), from the outside in::

    DRAM (kind: dram, bandwidth: dram_gbps)
      └─ global buffer (GLB): glb_weight_kb + glb_input_kb + glb_output_kb, one macro or three
         (glb_split), glb_banks banks of 256-bit words
           └─ NoC (noc_bytes_per_cycle): GLB -> PEs, with multicast; PE -> PE partial-sum
              forwarding (spatial reduction)
                └─ array_x by array_y PEs, each: a weight RF (rf_weight_bytes), an input RF
                   (rf_input_bytes), a partial-sum RF (rf_psum_bytes) and one MAC of the
                   datapath's format (datapath)
    + a vector unit (vector_width lanes) for the non-MAC layers, as the systolic template's

Memory levels, innermost first: **RF** (level 0, per PE, one per operand), **GLB** (level 1,
shared by the array), **DRAM** (level 2). Operands: **W** (weights), **I** (inputs), **O**
(outputs / partial sums). Loop dims of a layer (:data:`DIMS`): ``G`` groups (a batched
matmul's distinct operands too), ``N`` batch, ``K`` output channels per group, ``C`` input
channels per group, ``P``/``Q`` output rows/columns, ``R``/``S`` filter rows/columns. A GEMM is
``P = M``, ``C`` = reduction, ``K`` = output features, ``Q = R = S = 1``.

Knobs:

* ``array_x``, ``array_y``: PEs along X and Y.
* ``rf_weight_bytes``, ``rf_input_bytes``, ``rf_psum_bytes``: each PE's register files in
  bytes (a tile holds ``bytes * 8 / bits`` elements: weights and inputs at the layer's bits,
  partial sums at the accumulator width, ``acc_guard_bits``).
* ``glb_weight_kb``, ``glb_input_kb``, ``glb_output_kb``: global-buffer capacity for each
  operand, KB. ``glb_split``: ``split`` = three macros, each operand's GLB tile must fit its
  own; ``shared`` = one macro of the sum, the three tiles together must fit the sum (ZigZag's
  shared memory serving several operands).
* ``glb_banks``: banks of the GLB (each macro split in that many equal banks): each bank
  delivers one 256-bit word per cycle (``memories.WIDTH_BITS``); an access costs the energy
  of a bank-sized macro, the area is ``banks`` bank macros.
* ``dram`` (``technology.dram_knob``: energy per bit) and ``dram_gbps`` (bandwidth).
* ``noc_bytes_per_cycle``: bandwidth of the GLB -> PE network (a multicast counts once).
* ``clock_ghz``, ``node_nm`` (``technology.node_knob``), ``datapath`` (``datapath.knob``).
* ``vector_width``: lanes of the vector unit for non-MAC layers.
* ``dataflow``: the spatial dataflow family, which loop dims are unrolled on X and Y
  (:data:`UNROLLINGS`): ``ws`` weight-stationary (K on X, C on Y, as NVDLA / Simba), ``os``
  output-stationary (Q on X and P on Y, or K on X and P on Y, as ShiDianNao), ``rs``
  row-stationary (P on X, R on Y, as Eyeriss), ``free`` (the mapping picks per layer among
  ws, os's K/P, rs and ``qc``: Q on X and C on Y, the unrolling ZigZag's LOMA most often
  picks on an Eyeriss-like array), ``kc`` (K on X and C on Y and nothing else: a TPU-like
  systolic array with a fixed spatial mapping, as ZigZag's ``tpu_like`` with its shipped
  mapping file). Each axis unrolls a *primary* dim and, when it is smaller than the axis, a
  *fill* dim over the PEs left (``floor(axis / primary)``): ws fills X with G and Y with R,
  os fills X with K (or G) and Y with G (or Q), rs fills X with K and Y with C (Eyeriss
  replicates its PE sets over filters and channels), qc fills X with K and Y with G; kc has
  no fill dims, so a layer with fewer filters or channels than the axes leaves PEs idle (a
  depthwise layer, K = C = 1 per group, runs one group at a time on one PE). Every family
  offers 4 spatial *slots* per layer (:data:`UNROLLINGS`): ws and rs: fill on neither, X, Y
  or both axes; os: each of its two unrollings without and with fills; free: the four
  unrollings with fills; kc: its one unrolling four times (the same candidates repeated: the
  exact choice keeps the first on a tie, and the relaxed soft minimum weighs every candidate
  four times alike, so its choice is that of one slot).
* ``acc_guard_bits``: the partial sums' width above the product's (``tables.acc_bits``: weight
  bits + input bits + these, within [16, 48]): the width at which the psum RF holds them and
  the GLB and DRAM move them. 8 by default (a sum of 256 full-scale products cannot
  overflow); 0 gives an int8 array 16-bit partial sums, as Eyeriss's and ZigZag's designs
  have. The MAC's adder is the datapath's either way. Held at its default by the search
  (``search.api.HELD_BY_DEFAULT``): the exact check does not simulate an accumulator that
  overflows, so a narrower one is the user's choice (``--set acc_guard_bits=0``).
* ``mapper``: what each layer's mapping minimizes among its valid candidates (:data:`MAPPERS`),
  as ZigZag's LOMA ``opt``: ``edp`` latency x energy, ``energy`` (latency breaks near-ties),
  ``latency`` (energy breaks near-ties); the objective is ``latency^a x energy^b`` with
  ``(a, b)`` from :data:`MAPPER_EXPONENTS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from symbiote.backends import datapath, tables, technology
from symbiote.backends.space import HardwareSpace, Knob

#: loop dims of a layer, in this order everywhere in the template
DIMS = ("G", "N", "K", "C", "P", "Q", "R", "S")
G, N, K, C, P, Q, R, S = range(8)
#: operands, in this order everywhere in the template
OPERANDS = ("W", "I", "O")
#: dims relevant to each operand (an input's P/R and Q/S are relevant through the sliding window)
RELEVANT = {"W": (G, K, C, R, S), "I": (G, N, C, P, Q, R, S), "O": (G, N, K, P, Q)}

#: the ``dataflow`` knob's choices, in the order of its encoding (an index; ``kc`` last so that
#: the older families keep their indices)
DATAFLOWS = ("ws", "os", "rs", "free", "kc")
NONE = -1


@dataclass(frozen=True)
class Unrolling:
    """A spatial unrolling: the primary and fill dims of X and of Y (``NONE``: no fill)."""

    name: str
    x: int
    x_fill: int
    y: int
    y_fill: int

    def without(self, x_fill: bool, y_fill: bool) -> "Unrolling":
        """The same unrolling keeping its X fill and/or Y fill (``False``: dropped)."""
        tag = {(True, True): "", (True, False): "-fillx", (False, True): "-filly", (False, False): "-nofill"}
        return Unrolling(self.name + tag[(x_fill, y_fill)], self.x, self.x_fill if x_fill else NONE,
                         self.y, self.y_fill if y_fill else NONE)


WS = Unrolling("ws", K, G, C, R)
OS_PQ = Unrolling("os_pq", Q, K, P, G)
OS_KP = Unrolling("os_kp", K, G, P, Q)
RS = Unrolling("rs", P, K, R, C)
#: Q on X and C on Y (output columns x input channels), filled with K on X and G on Y
QC = Unrolling("qc", Q, K, C, G)
#: K on X and C on Y, no fill dims (ws's unrolling without its fills, named after its dims)
KC = Unrolling("kc", K, NONE, C, NONE)


def _fills(u: Unrolling) -> tuple[Unrolling, ...]:
    return (u.without(False, False), u.without(True, False), u.without(False, True), u)


#: per dataflow family, its 4 spatial slots (see the module doc)
UNROLLINGS: dict[str, tuple[Unrolling, ...]] = {
    "ws": _fills(WS),
    "os": (OS_PQ.without(False, False), OS_PQ, OS_KP.without(False, False), OS_KP),
    "rs": _fills(RS),
    "free": (WS, QC, OS_KP, RS),
    "kc": (KC,) * 4,
}
SLOTS = 4

#: the ``mapper`` knob's choices, in the order of its encoding
MAPPERS = ("edp", "energy", "latency")
#: per mapper choice, the exponents ``(a, b)`` of its objective ``latency^a x energy^b``: the
#: other figure's 1e-3 only breaks near-ties (a candidate of 0.1% less energy wins a 2x slower
#: one's place, one of 0.01% less loses it to a 10x faster one)
MAPPER_EXPONENTS = ((1.0, 1.0), (1e-3, 1.0), (1.0, 1e-3))

SPACE = HardwareSpace((
    Knob("array_x", "integer", 16, 1, 256, unit="PEs", doc="PE array width (X)"),
    Knob("array_y", "integer", 16, 1, 256, unit="PEs", doc="PE array height (Y)"),
    Knob("rf_weight_bytes", "integer", 256, 1, 65536, unit="bytes", doc="per-PE weight register file"),
    Knob("rf_input_bytes", "integer", 64, 1, 65536, unit="bytes", doc="per-PE input register file"),
    Knob("rf_psum_bytes", "integer", 64, 1, 65536, unit="bytes",
         doc="per-PE partial-sum register file (accumulator-wide words)"),
    Knob("glb_weight_kb", "integer", 64, 1, 65536, unit="KB", doc="global buffer for weights"),
    Knob("glb_input_kb", "integer", 64, 1, 65536, unit="KB", doc="global buffer for inputs"),
    Knob("glb_output_kb", "integer", 64, 1, 65536, unit="KB", doc="global buffer for outputs / partial sums"),
    Knob("glb_split", "categorical", "split", choices=("split", "shared"),
         doc="split: one GLB macro per operand, each tile fits its own; shared: one macro of the sum of the three"),
    Knob("glb_banks", "pow2", 4, 1, 64, unit="banks", doc="GLB banks, each one 256-bit word per cycle"),
    # 25.6 GB/s: one DDR4-3200 64-bit channel (JEDEC JESD79-4: 3200 MT/s x 8 bytes)
    Knob("dram_gbps", "continuous", 25.6, 1.0, 4096.0, unit="GB/s", doc="DRAM bandwidth"),
    Knob("noc_bytes_per_cycle", "continuous", 64.0, 1.0, 4096.0, unit="B/cycle",
         doc="GLB -> PE network bandwidth (a multicast counts once)"),
    Knob("clock_ghz", "continuous", 1.0, 0.1, 4.0, unit="GHz", doc="clock frequency"),
    Knob("vector_width", "pow2", 64, 1, 4096, unit="lanes", doc="vector unit lanes for non-MAC layers"),
    Knob("dataflow", "categorical", "free", choices=DATAFLOWS,
         doc="spatial dataflow family: ws (K on X, C on Y, with fill dims), os (Q/P or K/P), rs (P on X, R on Y, "
             "Eyeriss), free (the mapping picks per layer), kc (K on X, C on Y only: a TPU-like array, a "
             "depthwise layer on one PE); see backends/spatial/space.py"),
    datapath.knob("int8"),
    technology.node_knob(),
    technology.dram_knob(),
    Knob("mapper", "categorical", "edp", choices=MAPPERS,
         doc="each layer's mapping: the valid candidate of least latency x energy (edp), energy, or latency"),
    Knob("acc_guard_bits", "integer", int(tables.GUARD_BITS), 0, 16, unit="bits",
         doc="partial sums are weight bits + input bits + these wide (16 to 48 bits): 8 by default, 0 gives "
             "int8 the 16-bit partial sums of Eyeriss and ZigZag's designs; held by the search (overflow is not "
             "simulated)"),
))
