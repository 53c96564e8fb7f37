"""Co-design problems: a backend template + one or more networks -> a search Problem.

The genome holds the template's hardware knobs (each knob's legal grid, from
``Knob.grid``, plus its default), and per network, per ``--model-knobs``:

* ``channels``: one width per free channel group (``genome.width_grid``: from a quarter
  to twice the original width), acting on the Workload through ``with_widths``;
* ``precision``: one bit-width per MAC layer (from ``bits_choices``), through ``with_bits``.

The cost of a design is the template's ``cost`` (``relaxed_cost`` for gradients) on
every network's reshaped Workload; the fidelity is the accuracy proxy
(:mod:`symbiote.search.accuracy`), the parameter count follows the widths.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.errors import SearchError
from symbiote.search.accuracy import AccuracyProxy, build_proxy
from symbiote.search.genome import Gene, GenomeSpace, make_hw_gene, width_grid
from symbiote.search.objectives import Constraint, Objective
from symbiote.search.problem import Problem

MODEL_KNOBS = ("none", "channels", "precision", "channels+precision")
DEFAULT_BITS = (4, 5, 6, 8, 16)
#: the model knobs that live in this module (the others are registered in search/knobs/)
BUILT_IN_KNOBS = ("channels", "precision")


def parse_model_knobs(text: str) -> tuple[str, ...]:
    """``--model-knobs``: ``none`` or knob names joined by ``+`` (``channels``, ``precision``
    and every registered knob, :mod:`symbiote.search.knobs`)."""
    from symbiote.search import knobs

    if text.strip() == "none":
        return ()
    parts = tuple(p.strip() for p in text.split("+"))
    legal = (*BUILT_IN_KNOBS, *knobs.names())
    bad = [p for p in parts if p not in legal]
    if bad or not parts or len(set(parts)) != len(parts):
        raise SearchError(f"--model-knobs {text!r}: expected none or knob names joined by '+' from "
                          f"{', '.join(legal)} (e.g. channels+precision)")
    return parts


def registered_knobs(text: str) -> tuple[str, ...]:
    """The registered (search/knobs/) knobs of a ``--model-knobs`` text."""
    return tuple(k for k in parse_model_knobs(text) if k not in BUILT_IN_KNOBS)


@dataclass(frozen=True, eq=False)
class Network:
    name: str
    graph: Any                      # ir.Graph
    groups: Any                     # ChannelGroups
    workload: Any                   # ir.Workload
    free_ids: tuple[int, ...]       # free channel groups, genome order
    mac_layers: tuple[int, ...]     # workload rows with a bit-width knob
    proxy: AccuracyProxy
    source: str = ""
    #: the registered knobs fitted to this network (search/knobs/): knob name -> Fitted
    fitted: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(self.groups.groups[g].name for g in self.free_ids)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(self.workload.names[i] for i in self.mac_layers)


def network_name(src: str) -> str:
    s = str(src)
    if s.startswith("zoo:"):
        return s[4:]
    from pathlib import Path

    return Path(s).stem or "model"


def prepare_network(src: Any, name: str | None = None, input_shapes: Mapping[str, Any] | None = None,
                    graph: Any = None, calibrate: bool = True, calibration_inputs: list[dict] | None = None,
                    range_inputs: list[dict] | None = None, input_values: Mapping[str, Any] | None = None,
                    knobs: Sequence[str] = ()) -> Network:
    """Load (unless ``graph`` is given), analyse channel groups, lower, build the proxy
    (fitted to the exact check on a few probes when ``calibrate``: probes run on
    ``calibration_inputs``, activation ranges come from ``range_inputs``, by default the same)
    and fit the registered model knobs ``knobs`` (search/knobs/) on the same probes."""
    from symbiote.ir import ops
    from symbiote.ir.channel_groups import analyze
    from symbiote.ir.lower import lower
    from symbiote.ir.workload import MAC

    if graph is None:
        from symbiote.frontend import load

        graph = load(src, input_shapes=input_shapes or None, input_values=input_values or None)
    groups = analyze(graph)
    wl = lower(graph, groups)
    free = tuple(g.id for g in groups.free)
    from symbiote.passes.precision import quantizable

    # a bit-width knob only where set-precision writes one: what is priced is what is checked
    knobbed = {n.name for n in graph.nodes if n.op in ops.COMPUTE and quantizable(n)}
    kinds = np.asarray(wl.kind)
    macs = tuple(i for i, n in enumerate(wl.names) if kinds[i] == MAC and n in knobbed
                 and float(np.asarray(wl.w_repeat)[i]) == 1.0)
    proxy = build_proxy(graph, groups, free)
    if calibrate:
        from symbiote.search import accuracy

        inputs = calibration_inputs or accuracy.calibration_inputs(graph, None, samples=1)
        proxy = accuracy.calibrate(proxy, graph, groups, free, [wl.names[i] for i in macs], inputs,
                                   range_inputs=range_inputs)
    fitted = {}
    for k in knobs:
        from symbiote.search import knobs as registry

        knob = registry.get(k)
        inputs = calibration_inputs or accuracy_inputs(graph)
        fitted[k] = knob.fit(graph, wl, knob.targets(graph, wl), inputs if calibrate else [])
    return Network(name or network_name(src), graph, groups, wl, free, macs, proxy, str(src), fitted)


def accuracy_inputs(graph: Any) -> list[dict]:
    """One seeded random feed (the probes' default)."""
    from symbiote.search import accuracy

    return accuracy.calibration_inputs(graph, None, samples=1)


@dataclass(frozen=True, eq=False)
class Spec:
    """What a co-design problem is made of: the genome space, the template, the networks,
    the fixed hardware knobs and which model knobs are searched (the metric functions of the
    :class:`Problem` close over it, so it exists before the problem)."""

    space: GenomeSpace
    template: Any
    networks: tuple[Network, ...]
    hw_fixed: dict[str, Any]
    model_knobs: str
    bits_choices: tuple[int, ...] = DEFAULT_BITS
    knobs: tuple[str, ...] = ()      # the registered model knobs searched (search/knobs/)


@dataclass(frozen=True, eq=False)
class CoDesign:
    """A Problem plus what is needed to read its genomes back as designs."""

    problem: Problem
    spec: Spec

    @property
    def space(self) -> GenomeSpace:
        return self.problem.space

    @property
    def template(self) -> Any:
        return self.spec.template

    @property
    def networks(self) -> tuple[Network, ...]:
        return self.spec.networks

    @property
    def model_knobs(self) -> str:
        return self.spec.model_knobs

    @property
    def hw_fixed(self) -> dict[str, Any]:
        return self.spec.hw_fixed

    @property
    def bits_choices(self) -> tuple[int, ...]:
        return self.spec.bits_choices

    def hardware(self, idx: np.ndarray) -> dict[str, Any]:
        """The legal hardware design (Python values, every knob)."""
        g = self.space.structure(idx)
        d = dict(self.template.space.default())
        d.update(self.hw_fixed)
        for k, v in g.hw.items():
            d[k] = v
        return self.template.space.validate(d)

    def model_knobs_of(self, idx: np.ndarray) -> list[dict[str, Any]]:
        """Per network: ``widths`` (group -> width), ``bits`` (layer -> bits, None without the
        precision knob) and, per registered knob searched, target -> its setting."""
        g = self.space.structure(idx)
        idx = np.asarray(idx)
        out = []
        for n, (net, mk) in enumerate(zip(self.networks, g.models)):
            widths = {k: v for k, v in mk.widths.items()}
            d: dict[str, Any] = {"widths": widths, "bits": dict(mk.bits) if "precision" in self.model_knobs else None}
            for k in self.spec.knobs:
                f = net.fitted[k]
                d[k] = {t: f.options[j][int(idx[i])] for j, (t, i) in enumerate(zip(f.targets, self.space.indices(k, n)))}
            out.append(d)
        return out

    def knob_passes(self, chosen: Mapping[str, Any]) -> list[Any]:
        """The passes that write one network's registered knob settings (``model_knobs_of``'s
        entry) into its model."""
        from symbiote.search import knobs

        return [p for k in self.spec.knobs for p in knobs.get(k).passes(chosen.get(k) or {})]

    def details(self, idx: np.ndarray) -> list[Any]:
        """Full per-layer Metrics of one design, per network (jitted once per problem: for
        resnet18 a compile takes ~1.7 s here, an eager first call ~3.7 s)."""
        fn = self.__dict__.get("_details")
        if fn is None:
            spec = self.spec

            def costs(i):
                hw, wls = _split(spec, spec.space.decode(i))
                return [spec.template.cost(hw, wl) for wl in wls]

            fn = jax.jit(costs)
            object.__setattr__(self, "_details", fn)
        return fn(jnp.asarray(idx, jnp.int32))

    def baseline(self) -> np.ndarray:
        """The template's default hardware (held and ``--set`` knobs at their values) with
        the models as prepared: what ``symbiote cost MODEL [--set ...]`` prices."""
        return self.space.default()


def datapath_bits(template, hw: Mapping[str, Any]) -> int | None:
    """The operand bits of the template's datapath in ``hw`` (its default when not given);
    None for a template without a ``datapath`` knob (:mod:`symbiote.backends.datapath`)."""
    from symbiote.backends import datapath

    if "datapath" not in template.space:
        return None
    return int(datapath.BITS[datapath.CHOICES.index(hw.get("datapath", template.space["datapath"].default))])


def _with_default(knob, grid: list[Any]) -> list[Any]:
    """A knob's search grid with its default on it, so that the baseline genome is the
    template's default design (what ``symbiote cost`` prices), not the grid point nearest it."""
    return grid if knob.kind == "categorical" or knob.default in grid else sorted([*grid, knob.default])


def _hw_genes(template, grids: Mapping[str, Sequence[Any]] | None, fixed: Mapping[str, Any],
              max_points: int) -> list[Gene]:
    genes = []
    for k in template.space.knobs:
        if k.name in fixed:
            continue
        vals = list(grids[k.name]) if grids and k.name in grids else _with_default(k, k.grid(max_points))
        if not vals:
            raise SearchError(f"search grid of knob {k.name!r} is empty")
        if k.kind == "categorical":
            bad = [v for v in vals if v not in k.choices]
            if bad:
                raise SearchError(f"search grid of knob {k.name!r}: {', '.join(map(repr, bad))} not among "
                                  f"its choices ({', '.join(map(str, k.choices))})")
            labels = tuple(v for v in k.choices if v in vals)
            g = make_hw_gene(k.name, (), k.default if k.default in labels else labels[0], categorical_labels=labels)
            # keep the template's choice index as the gene value
            g = Gene(g.name, tuple(float(k.choices.index(c)) for c in labels), g.default, "hw", -1, True, labels,
                     False, k.name)
        else:
            for v in vals:
                k.validate(v, "search grid")
            g = make_hw_gene(k.name, sorted(set(float(v) for v in vals)), float(k.default))
        genes.append(g)
    return genes


def _split(spec: Spec, values: jnp.ndarray):
    space, template, networks, fixed = spec.space, spec.template, spec.networks, spec.hw_fixed
    hw: dict[str, jnp.ndarray] = {}
    for k in template.space.knobs:
        if k.name in fixed:
            hw[k.name] = jnp.float32(k.encode(fixed[k.name]))
    hw_idx = space.indices("hw")
    for j in hw_idx:
        hw[space.genes[j].key] = values[j]
    wls = []
    for n, net in enumerate(networks):
        wl = net.workload
        wi = space.indices("width", n)
        if len(wi):
            w = jnp.asarray(wl.widths0).at[jnp.asarray(net.free_ids)].set(values[wi])
            wl = wl.with_widths(w)
        bi = space.indices("bits", n)
        if len(bi):
            rows = jnp.asarray(net.mac_layers)
            wb = jnp.asarray(wl.weight_bits).at[rows].set(values[bi])
            ab = jnp.asarray(wl.act_bits).at[rows].set(values[bi])
            wl = wl.with_bits(wb, ab, jnp.asarray(wl.bits_given).at[rows].set(1.0))
        for k in spec.knobs:
            from symbiote.search import knobs

            ki = space.indices(k, n)
            if len(ki):
                wl = knobs.get(k).workload(wl, net.fitted[k], values[ki])
        wls.append(wl)
    return hw, wls


def _metrics(spec: Spec, values: jnp.ndarray, relaxed: bool) -> dict[str, jnp.ndarray]:
    from symbiote.ir.workload import MAC

    hw, wls = _split(spec, values)
    cost = spec.template.relaxed_cost if relaxed else spec.template.cost
    lat, en, area, params, fid, cyc = [], [], [], [], [], []
    space = spec.space
    for n, (net, wl) in enumerate(zip(spec.networks, wls)):
        m = cost(hw, wl)
        lat.append(m.total_latency_s)
        cyc.append(m.total_latency_cycles)
        en.append(m.total_energy_pj)
        area.append(jnp.asarray(m.area_mm2).reshape(()))
        params.append(jnp.sum(jnp.where((wl.kind == MAC) & (wl.w_repeat == 1), wl.weight_elems, 0.0)))
        wi, bi = space.indices("width", n), space.indices("bits", n)
        f = net.proxy.fidelity(values[wi] if len(wi) else None, values[bi] if len(bi) else None)
        if not len(bi) and len(net.mac_layers) and net.proxy.layer_coefs is not None and "datapath" in hw:
            # no bit-width genes: the check quantizes the model at an integer datapath's width
            from symbiote.backends import datapath

            q = 1.0 - net.proxy.fidelity(None, jnp.full(len(net.mac_layers), datapath.bits(hw)))
            f = f - q * (1.0 - datapath.is_float(hw))
        for k in spec.knobs:
            from symbiote.search import knobs

            ki = space.indices(k, n)
            if len(ki):
                f = f - knobs.get(k).proxy_loss(net.fitted[k], values[ki])
        fid.append(f)
    return {"latency_s": jnp.stack(lat), "latency_cycles": jnp.stack(cyc), "energy_pj": jnp.stack(en),
            "area_mm2": jnp.stack(area), "params": jnp.stack(params), "fidelity": jnp.stack(fid)}


def build(template, networks: Sequence[Network], *, model_knobs: str = "channels+precision",
          objectives: Sequence[Objective], constraints: Sequence[Constraint] = (),
          hw_grids: Mapping[str, Sequence[Any]] | None = None, hw_fixed: Mapping[str, Any] | None = None,
          bits_choices: Sequence[int] = DEFAULT_BITS, width_range: tuple[float, float] = (0.25, 2.0),
          max_points: int = 32) -> CoDesign:
    chosen = parse_model_knobs(model_knobs)
    extra = registered_knobs(model_knobs)
    fixed = dict(template.space.validate(hw_fixed or {}, "search", complete=False)) if hw_fixed else {}
    if hw_grids:
        for k in hw_grids:
            if k not in template.space:
                raise SearchError(f"unknown knob {k!r} of backend {template.name!r}")
    genes = _hw_genes(template, hw_grids, fixed, max_points)
    dp_bits = datapath_bits(template, fixed)
    bits = tuple(sorted({int(b) for b in bits_choices} | ({dp_bits} if dp_bits else set())))
    for n, net in enumerate(networks):
        if "channels" in chosen:
            for gid, gname in zip(net.free_ids, net.group_names):
                w0 = net.groups.groups[gid].width
                vals = width_grid(w0, min_frac=width_range[0], max_frac=width_range[1])
                genes.append(Gene(f"{net.name}/width/{gname}", vals, vals.index(float(w0)), "width", n, key=gname))
        if "precision" in chosen:
            # the model as given runs at the datapath's precision (8 bits without a datapath knob)
            base = dp_bits or (8 if 8 in bits else bits[len(bits) // 2])
            for lname in net.layer_names:
                genes.append(Gene(f"{net.name}/bits/{lname}", tuple(float(b) for b in bits), bits.index(base),
                                  "bits", n, key=lname))
        for k in extra:
            f = net.fitted.get(k)
            if f is None:
                raise SearchError(f"model knob {k!r} was not fitted to network {net.name!r} (prepare it with knobs=...)")
            for t, opts, d in zip(f.targets, f.options, f.default):
                genes.append(Gene(f"{net.name}/{k}/{t}", tuple(float(i) for i in range(len(opts))), d, k, n, True,
                                  tuple(opts), False, t))
    if not genes:
        raise SearchError("nothing to search: every hardware knob is fixed (--set) and --model-knobs is "
                          f"{model_knobs!r} (or the models have no free channel group / MAC layer)")
    names = tuple(net.name for net in networks)
    if len(set(names)) != len(names):
        raise SearchError(f"two models share the name {names}: give distinct files")
    space = GenomeSpace(tuple(genes), names)
    spec = Spec(space, template, tuple(networks), fixed, model_knobs, bits, extra)
    problem = Problem(space, lambda v: _metrics(spec, v, False), lambda v: _metrics(spec, v, True),
                      tuple(objectives), tuple(constraints), names)
    return CoDesign(problem, spec)
