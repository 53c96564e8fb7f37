"""Co-design problems: a backend template + one or more networks -> a search Problem.

The genome holds the template's hardware knobs (each knob's legal grid, from
``Knob.grid``, plus its default), and per network the genes of each model knob of
``--model-knobs`` (:mod:`symbiote.search.knobs`: ``channels``, ``precision``,
``sparsity``...), which the knob supplies along with its effect on the Workload and its
term of the accuracy proxy.

The cost of a design is the template's ``cost`` (``relaxed_cost`` for gradients) on
every network's reshaped Workload; the fidelity estimate is one minus the knobs' proxy
losses; the parameter count follows the widths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symbiote.errors import SearchError
from symbiote.search import knobs as registry
from symbiote.search.accuracy import AccuracyProxy
from symbiote.search.genome import Gene, GenomeSpace, make_hw_gene
from symbiote.search.objectives import Constraint, Objective
from symbiote.search.problem import Problem

DEFAULT_BITS = (4, 5, 6, 8, 16)
#: the knobs every network is fitted for, searched or not: the width and bits terms of its
#: proxy (``precision``'s also prices the datapath's quantization when bits are not searched)
ALWAYS_FITTED = ("channels", "precision")


def parse_model_knobs(text: str) -> tuple[str, ...]:
    """``--model-knobs``: ``none`` or names of registered knobs (:mod:`symbiote.search.knobs`)
    joined by ``+``."""
    if text.strip() == "none":
        return ()
    parts = tuple(p.strip() for p in text.split("+"))
    legal = registry.names()
    bad = [p for p in parts if p not in legal]
    if bad or not parts or len(set(parts)) != len(parts):
        raise SearchError(f"--model-knobs {text!r}: expected none or knob names joined by '+' from "
                          f"{', '.join(legal)} (e.g. channels+precision)")
    registry.check_together(parts)
    return parts


@dataclass(frozen=True, eq=False)
class Network:
    name: str
    graph: Any                      # ir.Graph
    groups: Any                     # ChannelGroups
    workload: Any                   # ir.Workload
    #: knob name -> the knob fitted to this network (search/knobs/): ``channels`` and
    #: ``precision`` always, the others when searched
    fitted: Mapping[str, Any]
    source: str = ""

    @property
    def free_ids(self) -> tuple[int, ...]:
        """The free channel groups (the ``channels`` knob's targets), genome order."""
        return tuple(int(i) for i in self.fitted["channels"].tables["ids"])

    @property
    def group_names(self) -> tuple[str, ...]:
        return self.fitted["channels"].targets

    @property
    def mac_layers(self) -> tuple[int, ...]:
        """Workload rows with a bit-width knob (the ``precision`` knob's targets)."""
        return self.fitted["precision"].rows

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self.fitted["precision"].targets

    @property
    def proxy(self) -> AccuracyProxy:
        """The ``channels`` and ``precision`` proxy terms together."""
        c, p = self.fitted["channels"].tables, self.fitted["precision"].tables
        return AccuracyProxy(c["curves"], c["widths0"], float(c["coef"]), float(p["bits_coef"]), p["coefs"],
                             p["decay"], float(p["ref_bits"]))


def network_name(src: str) -> str:
    s = str(src)
    if s.startswith("zoo:"):
        return s[4:]
    from pathlib import Path

    return Path(s).stem or "model"


def prepare_network(src: Any, name: str | None = None, input_shapes: Mapping[str, Any] | None = None,
                    graph: Any = None, calibrate: bool = True, calibration_inputs: list[dict] | None = None,
                    range_inputs: list[dict] | None = None, input_values: Mapping[str, Any] | None = None,
                    knobs: Sequence[str] = (), recovery: Any = None) -> Network:
    """Load (unless ``graph`` is given), analyse channel groups, lower, and fit the model
    knobs (:data:`ALWAYS_FITTED` and ``knobs``): with ``calibrate``, each knob's proxy term
    is fitted in onnxruntime on probes run on ``calibration_inputs`` (activation ranges from
    ``range_inputs``, by default the same); without, the knobs take their priors.
    ``recovery`` (:class:`symbiote.search.finetune.Recovery`): the fine-tuning candidates
    get, which the knobs' probes measure too."""
    from symbiote.ir.channel_groups import analyze
    from symbiote.ir.lower import lower

    if graph is None:
        from symbiote.frontend import load

        graph = load(src, input_shapes=input_shapes or None, input_values=input_values or None)
    groups = analyze(graph)
    wl = lower(graph, groups)
    prep = registry.Prepared(graph, groups, wl)
    probes = registry.Probes()
    if calibrate:
        inputs = calibration_inputs or accuracy_inputs(graph)
        probes = registry.Probes(inputs, range_inputs or inputs, recovery)
    fitted = {}
    for k in dict.fromkeys((*ALWAYS_FITTED, *knobs)):
        knob = registry.get(k)
        fitted[k] = knob.fit(prep, knob.targets(prep), probes)
    return Network(name or network_name(src), graph, groups, wl, fitted, str(src))


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
    knobs: tuple[str, ...] = ()      # the model knobs searched (search/knobs/), in the genome's order


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
        """Per network, each knob's settings: ``widths`` (group -> width; empty without the
        ``channels`` knob), ``bits`` (layer -> bits; None without ``precision``: the model
        runs at the datapath's precision) and, per other knob searched, target -> setting."""
        values = np.asarray(self.space.decode(np.asarray(idx, np.int32)))
        out = []
        for n, net in enumerate(self.networks):
            d: dict[str, Any] = {"widths": {}, "bits": None}
            for k in self.spec.knobs:
                knob, f = registry.get(k), net.fitted[k]
                where = self.space.indices(knob.kind, n)
                got = {t: knob.setting(f, j, values[i]) for j, (t, i) in enumerate(zip(f.targets, where))}
                d[{"channels": "widths", "precision": "bits"}.get(k, k)] = got
            out.append(d)
        return out

    def settings_of(self, chosen: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
        """One network's ``model_knobs_of`` entry as knob name -> settings, for the knobs
        other than ``channels`` and ``precision`` (:func:`symbiote.search.accuracy.apply_model_knobs`)."""
        return {k: chosen.get(k) or {} for k in self.spec.knobs if k not in ("channels", "precision")}

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
        for k in spec.knobs:
            knob = registry.get(k)
            ki = space.indices(knob.kind, n)
            if len(ki):
                wl = knob.workload(wl, net.fitted[k], values[ki], hw)
        wls.append(wl)
    return hw, wls


def _fidelity(spec: Spec, n: int, net: Network, values: jnp.ndarray, hw: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
    """One minus every searched knob's proxy loss; without the ``precision`` knob, the
    quantization the exact check applies at an integer datapath's width is priced too."""
    loss = jnp.float32(0.0)
    for k in spec.knobs:
        knob = registry.get(k)
        ki = spec.space.indices(knob.kind, n)
        if len(ki):
            loss = loss + knob.proxy_loss(net.fitted[k], values[ki])
    prec = net.fitted["precision"]
    if "precision" not in spec.knobs and "datapath" in hw and prec.targets and prec.tables["coefs"] is not None:
        from symbiote.backends import datapath

        dp = datapath.resolve(hw)
        at_dp = registry.get("precision").proxy_loss(prec, jnp.full(len(prec.targets), dp.bits))
        loss = loss + at_dp * (1.0 - dp.is_float)
    return 1.0 - loss


def _metrics(spec: Spec, values: jnp.ndarray, relaxed: bool) -> dict[str, jnp.ndarray]:
    from symbiote.ir.workload import MAC

    hw, wls = _split(spec, values)
    cost = spec.template.relaxed_cost if relaxed else spec.template.cost
    lat, en, area, params, fid, cyc = [], [], [], [], [], []
    for n, (net, wl) in enumerate(zip(spec.networks, wls)):
        m = cost(hw, wl)
        lat.append(m.total_latency_s)
        cyc.append(m.total_latency_cycles)
        en.append(m.total_energy_pj)
        area.append(jnp.asarray(m.area_mm2).reshape(()))
        params.append(jnp.sum(jnp.where((wl.kind == MAC) & (wl.w_repeat == 1), wl.weight_elems, 0.0)))
        fid.append(_fidelity(spec, n, net, values, hw))
    from symbiote.search.phases import search_metrics

    return {"latency_s": jnp.stack(lat), "latency_cycles": jnp.stack(cyc), "energy_pj": jnp.stack(en),
            "area_mm2": jnp.stack(area), "params": jnp.stack(params), "fidelity": jnp.stack(fid),
            # an LLM phase's token count and memory footprint (search/phases.py)
            **search_metrics([net.graph for net in spec.networks], [net.workload for net in spec.networks], wls, hw)}


def build(template, networks: Sequence[Network], *, model_knobs: str = "channels+precision",
          objectives: Sequence[Objective], constraints: Sequence[Constraint] = (),
          hw_grids: Mapping[str, Sequence[Any]] | None = None, hw_fixed: Mapping[str, Any] | None = None,
          bits_choices: Sequence[int] = DEFAULT_BITS, width_range: tuple[float, float] = (0.25, 2.0),
          max_points: int = 32, weights: Sequence[float] | None = None) -> CoDesign:
    """``weights``: each network's weight in the geometric mean of the objectives (None: equal;
    :func:`symbiote.search.problem.log_mean`)."""
    chosen = registry.ordered(parse_model_knobs(model_knobs))
    fixed = dict(template.space.validate(hw_fixed or {}, "search", complete=False)) if hw_fixed else {}
    if hw_grids:
        for k in hw_grids:
            if k not in template.space:
                raise SearchError(f"unknown knob {k!r} of backend {template.name!r}")
    genes = _hw_genes(template, hw_grids, fixed, max_points)
    settings = registry.GeneSettings(tuple(sorted(int(b) for b in bits_choices)), datapath_bits(template, fixed),
                                     tuple(width_range))
    for n, net in enumerate(networks):
        for k in chosen:
            f = net.fitted.get(k)
            if f is None:
                raise SearchError(f"model knob {k!r} was not fitted to network {net.name!r} (prepare it with knobs=...)")
            genes.extend(registry.get(k).genes(f, n, net.name, settings))
    bits = tuple(sorted(set(settings.bits) | ({settings.datapath_bits} if settings.datapath_bits else set())))
    if not genes:
        raise SearchError("nothing to search: every hardware knob is fixed (--set) and --model-knobs is "
                          f"{model_knobs!r} (or the models have no free channel group / MAC layer)")
    names = tuple(net.name for net in networks)
    if len(set(names)) != len(names):
        raise SearchError(f"two models share the name {names}: give distinct files")
    if weights is not None and len(weights) != len(names):
        raise SearchError(f"{len(weights)} network weights for {len(names)} networks")
    space = GenomeSpace(tuple(genes), names)
    spec = Spec(space, template, tuple(networks), fixed, model_knobs, bits, chosen)
    problem = Problem(space, lambda v: _metrics(spec, v, False), lambda v: _metrics(spec, v, True),
                      tuple(objectives), tuple(constraints), names,
                      None if weights is None else tuple(float(w) for w in weights))
    return CoDesign(problem, spec)
