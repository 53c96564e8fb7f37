"""``report.md`` with PNG plots (matplotlib, Agg backend).

Degenerate inputs (:mod:`symbiote.search.degenerate`) come first, under "Warnings".
Plots: the Pareto front (first two objectives, or latency vs energy of the archive),
convergence (best objective vs evaluations), per-layer latency and energy before
(default hardware, model as prepared) and after (the chosen design), per-layer
utilization. Images are written atomically like everything else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from symbiote.search.api import RunOutcome
from symbiote.fileio import atomic_path, write_text


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _timing_lines(t) -> list[str]:
    """Where the run's time went (``--budget-seconds``: the plan and what did not fit)."""
    if t is None:
        return []
    head = f"budget {t.budget_s:g} s" if t.budget_s is not None else "no time budget (--budget-evals)"
    out = ["## Time", "", f"Seconds per phase from the process start ({head}; the files and this report "
           "come after): " + ", ".join(f"{k} {v:.1f}" for k, v in t.phases.items()), ""]
    out += [f"- {note}" for note in t.notes]
    return out + ([""] if t.notes else [])


def _measured(acc: dict, key: str) -> str:
    """A measure with its bootstrap 95% interval, when there is one."""
    iv = (acc.get("interval") or {}).get(key)
    return _fmt(acc.get(key)) + (f" [{iv[0]:.4g}, {iv[1]:.4g}]" if iv else "")


def _accuracy_lines(o: RunOutcome) -> list[str]:
    """Per network, the exact check's measures per output (onnxruntime, evaluation samples)."""
    out = ["## Accuracy per output", "",
           "Measured in onnxruntime on the evaluation samples (never the calibration ones). fidelity = the least "
           "per-output cosine, agreement = the least top-1 agreement over score outputs; the proxy's estimate "
           "decides nothing about the verdict.", ""]
    for n in o.networks:
        acc = n.accuracy or {}
        if not acc.get("outputs"):
            continue
        out += [f"### {n.name} ({acc.get('samples')} samples; {acc.get('samples_from', '')})", "",
                "| output | cosine | rel. L2 error | top-1 | top-5 |", "|---|---|---|---|---|"]
        out += [f"| {m['name']} | {_fmt(m['cosine'])} | {_fmt(m['rel_l2'])} | {_fmt(m.get('top1'))} "
                f"| {_fmt(m.get('top5'))} |" for m in acc["outputs"]]
        if acc.get("concatenated_cosine") is not None:
            out += ["", f"One cosine over all outputs concatenated (not used): {_fmt(acc['concatenated_cosine'])}"]
        if acc.get("metric"):
            out += ["", "Your metric (--metric): " + ", ".join(f"{k} {_fmt(v)}" for k, v in acc["metric"].items())]
        if acc.get("accuracy") is not None:
            out += ["", f"Top-1 accuracy against the labels: {_measured(acc, 'accuracy')} (original "
                        f"{_fmt(acc.get('accuracy_original'))}; drop {_measured(acc, 'accuracy_drop')})"]
        out.append("")
    return out


def mix_lines(mix: dict | None) -> list[str]:
    """A phase mix's figures (``RunOutcome.mix``): one line per phase (its TTFT or TPOT and
    objective 1), then their weighted geometric mean; none without a mix."""
    if not mix:
        return []
    out = []
    for r in mix["phases"]:
        fig = f"TTFT {r['ttft_ms']:.4g} ms" if "ttft_ms" in r else f"TPOT {r['tpot_ms']:.4g} ms"
        out.append(f"phase {r['network']} ({r['phase']}, weight {r['weight']:g}): {fig}, "
                   f"{mix['objective_name']} {r['objective']:.4g}")
    out.append(f"mix: weighted geometric mean of {mix['objective_name']} {mix['objective']:.4g}")
    return out


def write_report(o: RunOutcome, out_dir: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cd = o.codesign
    images: list[tuple[str, str]] = []

    # convergence
    h = np.array([(e, s, b) for e, s, b in o.result.history], float)
    if len(h):
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        ok = np.isfinite(h[:, 2])
        ax.plot(h[ok, 0], h[ok, 2], drawstyle="steps-post")
        ax.set_xlabel("evaluations")
        ax.set_ylabel(f"best {cd.problem.objectives[0].text or 'objective'} (geomean)")
        ax.set_yscale("log")
        ax.set_title("convergence")
        _save(fig, out / "convergence.png")
        plt.close(fig)
        images.append(("Convergence", "convergence.png"))

    # Pareto front / archive scatter
    arch = o.result.archive
    if arch is not None and len(arch.genomes):
        from symbiote.search.problem import evaluator_for

        m = evaluator_for(cd.problem).metrics(arch.genomes[: min(len(arch.genomes), 256)])
        feas = arch.viol[: len(m["latency_s"])] <= 0
        lat = np.exp(np.mean(np.log(m["latency_s"]), axis=1))
        en = np.exp(np.mean(np.log(m["energy_pj"]), axis=1))
        fig, ax = plt.subplots(figsize=(5.5, 4))
        ax.scatter(lat[~feas] * 1e3, en[~feas] * 1e-6, s=8, c="lightgray", label="infeasible")
        ax.scatter(lat[feas] * 1e3, en[feas] * 1e-6, s=10, c="tab:blue", label="feasible")
        if o.front:
            fl = [np.exp(np.mean(np.log([mm["latency_s"] for mm in p["metrics"]]))) * 1e3 for p in o.front]
            fe = [np.exp(np.mean(np.log([mm["energy_pj"] for mm in p["metrics"]]))) * 1e-6 for p in o.front]
            ax.scatter(fl, fe, s=30, c="tab:red", marker="x", label="Pareto front")
        best_l = np.exp(np.mean(np.log([n.metrics["latency_s"] for n in o.networks]))) * 1e3
        best_e = np.exp(np.mean(np.log([n.metrics["energy_pj"] for n in o.networks]))) * 1e-6
        ax.scatter([best_l], [best_e], s=80, marker="*", c="gold", edgecolors="k", label="chosen", zorder=5)
        for axis, scale in ((ax.xaxis, ax.set_xscale), (ax.yaxis, ax.set_yscale)):
            lo, hi = axis.get_data_interval()
            if lo > 0 and hi / lo > 10:  # log only over a decade or more: else the ticks go unlabelled
                scale("log")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("energy (uJ)")
        ax.legend(fontsize=7)
        ax.set_title("designs kept by the search")
        _save(fig, out / "pareto.png")
        plt.close(fig)
        images.append(("Pareto front and archive", "pareto.png"))

    # per-layer before/after
    before = cd.details(cd.baseline())
    after = cd.details(o.best)
    for i, net in enumerate(cd.networks):
        b, a = before[i], after[i]
        names = list(net.workload.names)
        x = np.arange(len(names))
        fig, axes = plt.subplots(3, 1, figsize=(max(6, len(names) * 0.06 + 4), 8), sharex=True)
        axes[0].bar(x - 0.2, np.asarray(b.latency_s) * 1e6, 0.4, label="before")
        axes[0].bar(x + 0.2, np.asarray(a.latency_s) * 1e6, 0.4, label="after")
        axes[0].set_ylabel("latency (us)")
        axes[0].legend(fontsize=7)
        axes[1].bar(x - 0.2, np.asarray(b.energy_pj) * 1e-6, 0.4)
        axes[1].bar(x + 0.2, np.asarray(a.energy_pj) * 1e-6, 0.4)
        axes[1].set_ylabel("energy (uJ)")
        axes[2].bar(x - 0.2, np.asarray(b.utilization), 0.4)
        axes[2].bar(x + 0.2, np.asarray(a.utilization), 0.4)
        axes[2].set_ylabel("utilization")
        axes[2].set_xlabel("layer (topological order)")
        axes[0].set_title(f"{net.name}: per layer, default hardware + prepared model vs the chosen design")
        _save(fig, out / f"layers_{net.name}.png")
        plt.close(fig)
        images.append((f"{net.name}: per-layer latency, energy and utilization, before and after",
                       f"layers_{net.name}.png"))

    lines = ["# symbiote search report", "",
             f"- backend: `{o.config.backend}`; models: {', '.join(f'`{m}`' for m in o.config.models)}",
             f"- objective: {', '.join(ob.text for ob in cd.problem.objectives)} "
             f"({'weighted ' if o.mix else ''}geometric mean over networks: "
             f"{o.objective:.4g}); constraints: {', '.join(str(c) for c in (o.constraints or cd.problem.constraints)) or 'none'}",
             *([f"- **accuracy floor applied** (model knobs on, no accuracy constraint given): "
                f"{', '.join(str(c) for c in o.floor)}; `--no-accuracy-floor` turns it off"] if o.floor else []),
             f"- models prepared with `{o.config.prepare}` (exact passes); model knobs: {o.config.model_knobs} "
             "(a layer's bit-width sets its weights and activations, both quantized in the exact check); "
             f"seed {o.config.settings.seed}; "
             f"{o.result.evals} evaluations in {o.result.elapsed_s:.1f} s; genome of {cd.space.dim} knobs",
             f"- candidates dropped by the exact check in onnxruntime: {o.rejected}",
             *([f"- **the models are left as given**: {o.answer_note}"] if o.answer_note else []), "",
             *([f"**WARNING: no design met the constraints; this is the least-violating one found "
                f"(total violation {o.violation:.3g}). Loosen the constraints or give more budget.**", ""]
               if not o.feasible else []),
             *(["## Warnings", "", *[f"- **warning** ({w.kind}): {w.message}" for w in o.warnings], ""]
               if o.warnings else []),
             "## Hardware", "", "| knob | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in o.hardware.items()]
    lines += ["", "## Networks", "",
              "| network | latency ms (before -> after) | energy uJ (before -> after) | EDP pJ*s (before -> after) "
              "| area mm2 | params | fidelity, measured [95% CI] | agreement, measured [95% CI] | fidelity, proxy "
              "| regret |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for n in o.networks:
        b, m = n.baseline, n.metrics
        acc = n.accuracy or {}
        lines.append(f"| {n.name} | {b['latency_s'] * 1e3:.4g} -> {m['latency_s'] * 1e3:.4g} "
                     f"| {b['energy_pj'] * 1e-6:.4g} -> {m['energy_pj'] * 1e-6:.4g} "
                     f"| {b['edp']:.4g} -> {m['edp']:.4g} | {m['area_mm2']:.3g} | {m['params']:.4g} "
                     f"| {_measured(acc, 'fidelity')} | {_measured(acc, 'agreement')} "
                     f"| {_fmt(acc.get('proxy_fidelity'))} "
                     f"| {n.regret_note.split(':')[0] + ' (below)' if n.regret_note else _fmt(n.regret)} |")
    lines += ["", "Before: the template's default hardware running the model as prepared (what "
              "`symbiote cost MODEL` prices). Regret (several "
              "networks): objective of the shared design for this network over the objective of the design "
              "searched for it alone, minus one.", ""]
    lines += [f"- **regret of {n.name}**: {n.regret_note}" for n in o.networks if n.regret_note]
    lines += [""] if any(n.regret_note for n in o.networks) else []
    if o.mix:
        lines += ["## Phase mix", "", "Each phase is one network; the objective is their geometric mean weighted "
                  "by the phases' weights.", "", *[f"- {line}" for line in mix_lines(o.mix)], ""]
    if o.hardware_only is not None:
        lines += ["The models as given on the hardware-only search's best design (the same run; "
                  f"hardware: {', '.join(f'{k}={_fmt(v)}' for k, v in o.hardware_only['hardware'].items())}):", ""]
        lines += [f"- {n.name}: EDP {m['edp']:.4g} pJ*s, latency {m['latency_s'] * 1e3:.4g} ms, energy "
                  f"{m['energy_pj'] * 1e-6:.4g} uJ; the answer's EDP is {m['edp'] / max(n.metrics['edp'], 1e-300):.2f}x lower"
                  for n, m in zip(o.networks, o.hardware_only["metrics"])]
        lines += [""]
    if o.config.recovery.on:
        r = o.config.recovery
        lines += [f"Each reshaped candidate was fine-tuned {r.steps} steps (learning rate {r.lr:g}, seed {r.seed}; "
                  "label-free distillation from the original on the calibration samples) before its exact check; "
                  "the accuracy above is the fine-tuned model's, on the evaluation samples.", ""]
    lines += _accuracy_lines(o)
    lines += _timing_lines(o.timing)
    for n in o.networks:
        mk = n.model_knobs
        changed = {k: v for k, v in mk["widths"].items()}
        lines.append(f"### {n.name}: model knobs")
        lines.append("")
        if changed:
            lines.append("Channel widths: " + ", ".join(f"`{k}`={v}" for k, v in changed.items()))
        if mk.get("bits"):
            hist = {}
            for v in mk["bits"].values():
                hist[v] = hist.get(v, 0) + 1
            lines.append("Bit-widths (layers per precision): " + ", ".join(f"{k} bits: {c}" for k, c in sorted(hist.items())))
        others = {k: {t: v for t, v in d.items() if v != "dense"} for k, d in mk.items()
                  if k not in ("widths", "bits") and isinstance(d, dict)}
        for k, d in others.items():
            if d:
                lines.append(f"{k.capitalize()}: " + ", ".join(f"`{t}`={v}" for t, v in d.items()))
        if not changed and not mk.get("bits") and not any(others.values()):
            lines.append("The model is used as given.")
        lines.append("")
    lines += ["## Plots", ""]
    lines += [f"### {t}\n\n![{t}]({f})\n" for t, f in images]
    lines += ["## Files", "", "- `result.json`: everything above as data", "- `hardware.yaml`: "
              "`symbiote cost MODEL --hw hardware.yaml` prices it", "- `pareto.csv`: the Pareto front",
              *[f"- `{n.name}.onnx`: the reshaped model (runs in onnxruntime)" for n in o.networks], ""]
    path = out / "report.md"
    write_text(path, "\n".join(lines))
    return path
