"""``symbiote profile MODEL --sweep GROUP [--range 64:1024:8] [--threads 1] [-o DIR]``.

Measures, on this CPU in onnxruntime, the latency of the kernels whose dimensions follow one
channel group (a conv's output channels, a GEMM's output width, an LSTM's hidden size) as
that group takes each width of ``--range`` (``START:STOP:STEP``, both ends included), with
the ``ort-cpu`` template's kernels and cache (:mod:`symbiote.backends.ortcpu.sweep`). GROUP
is a channel group's name, as ``symbiote inspect --groups`` and ``symbiote search`` name
them (``lstm.0.hidden``, ``stage1.conv.out``), or a node whose output starts one. The model
is prepared first (``--prepare``) as ``symbiote cost`` does.

Writes ``DIR/sweep.csv`` (``width, latency_ms, spread_ms, hysteresis, beats_width``) and
``DIR/sweep.png`` (latency against width, the spread as error bars, hysteresis points
marked), and prints each hysteresis point: a width that measured faster than a smaller
one beyond the noise (:func:`symbiote.backends.ortcpu.hysteresis.hysteresis_points`).
``--pick WIDTH [--tolerance 0.1]`` also prints the fastest measured width from WIDTH up to
``WIDTH * (1 + tolerance)`` (growing a group is exact, so that width loses no accuracy).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from symbiote.commands.modelargs import add_input_arguments, add_prepare_argument
from symbiote.errors import SymbioteError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="an ONNX file, or zoo:NAME (e.g. zoo:lstm)")
    parser.add_argument("--sweep", required=True, metavar="GROUP", help="the channel group (or a node whose output starts one)")
    parser.add_argument("--range", default="64:1024:8", dest="width_range", metavar="START:STOP:STEP",
                        help="widths to measure, both ends included (default 64:1024:8)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    parser.add_argument("-o", "--out", default="profile", metavar="DIR", help="output folder (default ./profile)")
    parser.add_argument("--pick", type=int, metavar="WIDTH", help="print the fastest swept width from WIDTH up to WIDTH*(1+tolerance)")
    parser.add_argument("--tolerance", type=float, default=0.1, help="share above --pick's width allowed (default 0.1)")
    add_prepare_argument(parser)
    add_input_arguments(parser)


def parse_range(text: str) -> list[int]:
    """``START:STOP:STEP`` (or ``START:STOP``, step 1) as the widths, both ends included."""
    parts = text.split(":")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) == 2:
        nums.append(1)
    if len(nums) != 3 or nums[0] < 1 or nums[1] < nums[0] or nums[2] < 1:
        raise SymbioteError(f"--range {text!r}: expected START:STOP:STEP with 1 <= START <= STOP and STEP >= 1, e.g. 64:1024:8")
    return list(range(nums[0], nums[1] + 1, nums[2]))


def resolve_group(graph, groups, name: str) -> int:
    """The id of the group called ``name``, or of the group a node ``name``'s first output starts."""
    for g in groups.groups:
        if g.name == name:
            return g.id
    node = next((n for n in graph.nodes if n.name == name), None)
    if node is not None and node.outputs:
        out = node.outputs[0].name
        for g in groups.groups:
            if any(v == out for v, _ in g.members):
                return g.id
    known = ", ".join(g.name for g in groups.groups) or "none"
    raise SymbioteError(f"--sweep {name!r}: no such channel group or node with one; the groups are: {known}")


def write_csv(path: Path, rows, points) -> None:
    from symbiote.fileio import write_text

    marks = {p.width: p for p in points}
    lines = ["width,latency_ms,spread_ms,hysteresis,beats_width"]
    for r in rows:
        p = marks.get(r.width)
        lines.append(f"{r.width},{r.median_s * 1e3:.6f},{r.spread_s * 1e3:.6f},{int(p is not None)},{p.beats_width if p else ''}")
    write_text(path, "\n".join(lines) + "\n")


def write_png(path: Path, rows, points, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from symbiote.fileio import atomic_path

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.errorbar([r.width for r in rows], [r.median_s * 1e3 for r in rows], yerr=[r.spread_s * 1e3 for r in rows],
                fmt="-o", ms=3, lw=1, capsize=2, label="median (error bar: half the interquartile range)")
    if points:
        ax.scatter([p.width for p in points], [p.median_s * 1e3 for p in points], s=60, facecolors="none",
                   edgecolors="red", zorder=3, label="hysteresis: faster than a smaller width")
    ax.set_xlabel("width")
    ax.set_ylabel("latency (ms)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from symbiote.backends.ortcpu.cache import context
    from symbiote.backends.ortcpu.hysteresis import fastest_within, hysteresis_points
    from symbiote.backends.ortcpu.sweep import sweep
    from symbiote.commands.modelargs import load_model
    from symbiote.ir.channel_groups import analyze
    from symbiote.ir.lower import lower
    from symbiote.search.prepare import parse_prepare, prepare_graph

    widths = parse_range(args.width_range)
    if args.threads < 1:
        raise SymbioteError(f"--threads {args.threads}: expected at least 1")
    parse_prepare(args.prepare)
    graph = prepare_graph(load_model(args, args.model), args.prepare)
    groups = analyze(graph)
    gid = resolve_group(graph, groups, args.sweep)
    group = groups.groups[gid]
    rows = sweep(lower(graph, groups), gid, widths, args.threads)
    points = hysteresis_points(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = context(args.threads)
    write_csv(out / "sweep.csv", rows, points)
    write_png(out / "sweep.png", rows, points,
              f"{args.model}: {group.name} (width {group.width}), {args.threads} thread(s), {ctx.cpu}")
    print(f"{args.model}: channel group {group.name} (width {group.width}), {len(rows)} widths "
          f"{widths[0]}..{widths[-1]}, {args.threads} thread(s), onnxruntime {ctx.ort_version}, {ctx.cpu}")
    fastest = min(rows, key=lambda r: r.median_s)
    print(f"latency {rows[0].median_s * 1e3:.4g} ms at {rows[0].width} .. {rows[-1].median_s * 1e3:.4g} ms at "
          f"{rows[-1].width}; fastest {fastest.median_s * 1e3:.4g} ms at {fastest.width}")
    print(f"hysteresis points (faster than a smaller width beyond the spread): {len(points)}")
    for p in points:
        print(f"  width {p.width}: {p.median_s * 1e3:.4g} ms, faster than width {p.beats_width} "
              f"({p.beats_median_s * 1e3:.4g} ms) by {p.gain:.1%}")
    if args.pick is not None:
        best = fastest_within(rows, args.pick, args.tolerance)
        at = next((r for r in rows if r.width == args.pick), None)
        if best is None:
            print(f"pick {args.pick}: no swept width in [{args.pick}, {args.pick * (1 + args.tolerance):g}]")
        else:
            base = f" (width {args.pick}: {at.median_s * 1e3:.4g} ms)" if at else ""
            print(f"pick {args.pick} (tolerance {args.tolerance:g}): width {best.width}, {best.median_s * 1e3:.4g} ms{base}")
    print(f"wrote {out / 'sweep.csv'} and {out / 'sweep.png'}")
    return 0
