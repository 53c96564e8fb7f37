"""Llama-2-7B at fp16 on the roofline template set up as an A100: published vs predicted.

The workload is ``zoo:gpt_decoder`` at Llama-2-7B's shape (:data:`symbiote.frontend.zoo_gpt.LLAMA2_7B`:
32 layers, hidden 4096, 32 heads, SwiGLU 11008, vocabulary 32000, untied head) in fp16, built
with shape-only weights (``weights="empty"``: sparse initializers with no values, so the
7 B-parameter ONNX graph is built, loaded and lowered in seconds with no weight memory; the
cost model reads only shapes). Each phase is loaded with :func:`symbiote.search.phases.load_phase`,
prepared with the search's default passes and lowered at the tensors' dtypes (fp16).

The design (:data:`DESIGN`): the template's defaults are the A100-SXM4 (NVIDIA A100 Tensor Core
GPU Architecture whitepaper, 2020: 108 SMs, 1.41 GHz, 312 dense FP16 TFLOPS, 40 MB L2);
the published runs are on an A100 80GB SXM4 (named by the NeMo table; TensorRT-LLM's table
says only "A100", taken as the same part), so ``dram_gbps = 2039`` and ``dram_gib = 80``
(NVIDIA A100 datasheet, 2021: A100 80GB SXM, 2,039 GB/s HBM2e) and ``dram = hbm2e``.
``tile_m = 16``: the M size of the A100's FP16 tensor-core instruction (``mma.sync``
``m16n8k16``, NVIDIA PTX ISA), the finest row granularity a GEMM is quantized to; with the
template's default 128 a decode step (M = batch) is charged 128 rows of work per tile (in
one run here: a batch-1 step at context 128 came to 15.0 ms at ``tile_m = 128``, 8.13 ms at
16, and the 128-token prefill to 16.7 ms and 11.2 ms). One design serves every row below.

Published figures (:data:`FIGURES`):

* [TRT] NVIDIA TensorRT-LLM, ``docs/source/performance.md`` (the v0.6.1 documentation),
  "A100 GPUs (FP16)" tables: "Low Latency" (data from v0.5), LLaMA 7B, batch 1, TP 1:
  1st-token latency 16 ms at input 128 and 133 ms at input 2048; "Peak Throughput", LLaMA 7B,
  TP 1: 5,586 output tok/s at batch 384, input 128, output 128; 1,928 at batch 60, input
  128, output 2048; 591 at batch 52, input 2048, output 128. Its methodology section names
  the model "Llama2-7b" (LLaMA 1 and 2 7B have the same layer shapes).
* [NeMo] NVIDIA NeMo Framework User Guide, "Llama-2 Results", Inference Performance,
  Configuration 1 (chatbot: input 128 tokens, output 20 tokens), table "Average Latency,
  Average Throughput, and Model Size", Llama-2-7B, TP 1, PP 1, 1 GPU, A100 80GB SXM4:
  average latency 234.0 ms (batch 1), 249.6 (2), 272.6 (4), 329.5 (8).

Predictions: ``ttft`` is the prefill's latency; a run of ``out`` output tokens after an
input of ``S`` is the prefill (which gives the first token) plus ``out - 1`` decode steps at
contexts ``S .. S + out - 2``. A decode step's latency is integrated over those contexts by
the trapezoid rule on :data:`DECODE_POINTS` evenly spaced contexts (its KV-cache read grows
linearly with the context; tile rounding makes it piecewise linear). Throughput =
``batch * out / (that run's latency)``. The capacity check (weights + KV cache at the last
step against ``dram_gib``) is printed for each row.

Run: ``python benchmarks/llm.py [--json]``. The ratios and the notes on each miss beyond 25%
are printed with the table (:data:`NOTES`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

#: the design (module doc)
DESIGN = {"dram": "hbm2e", "dram_gbps": 2039.0, "dram_gib": 80.0, "tile_m": 16}
#: contexts at which a run's decode steps are evaluated (trapezoid rule, module doc)
DECODE_POINTS = 5
#: a miss beyond this share is explained in :data:`NOTES`
TOLERANCE = 0.25

_TRT = "TensorRT-LLM docs/source/performance.md (v0.6.1 docs), A100 GPUs (FP16)"
_NEMO = "NeMo Framework User Guide, Llama-2 Results, Configuration 1, A100 80GB SXM4, TP 1"


@dataclass(frozen=True)
class Figure:
    """One published figure: ``metric`` is ``ttft_ms``, ``latency_ms`` (input + output run) or
    ``tokens_per_s`` (output tokens per second of such a run)."""

    name: str
    metric: str
    batch: int
    input_len: int
    output_len: int
    published: float
    source: str
    phase: str  # which phase dominates: "prefill" or "decode"


FIGURES = (
    Figure("ttft b1 in128", "ttft_ms", 1, 128, 1, 16.0, f"{_TRT}, Low Latency, LLaMA 7B, 1st token latency", "prefill"),
    Figure("ttft b1 in2048", "ttft_ms", 1, 2048, 1, 133.0, f"{_TRT}, Low Latency, LLaMA 7B, 1st token latency", "prefill"),
    Figure("run b1 128+20", "latency_ms", 1, 128, 20, 234.0, f"{_NEMO}, average latency", "decode"),
    Figure("run b2 128+20", "latency_ms", 2, 128, 20, 249.6, f"{_NEMO}, average latency", "decode"),
    Figure("run b4 128+20", "latency_ms", 4, 128, 20, 272.6, f"{_NEMO}, average latency", "decode"),
    Figure("run b8 128+20", "latency_ms", 8, 128, 20, 329.5, f"{_NEMO}, average latency", "decode"),
    Figure("tput b384 128+128", "tokens_per_s", 384, 128, 128, 5586.0, f"{_TRT}, Peak Throughput, LLaMA 7B", "decode"),
    Figure("tput b60 128+2048", "tokens_per_s", 60, 128, 2048, 1928.0, f"{_TRT}, Peak Throughput, LLaMA 7B", "decode"),
    Figure("tput b52 2048+128", "tokens_per_s", 52, 2048, 128, 591.0, f"{_TRT}, Peak Throughput, LLaMA 7B", "prefill"),
)

_NEMO_NOTE = ("NeMo's average latency is a whole request through NeMo's inference path (TensorRT-LLM underneath); at "
              "batch 1 it implies (234.0 - 16) / 19 = 11.5 ms per output token after the 16 ms first token TensorRT-LLM "
              "reports for the same input: 13.48 GB of fp16 weights in 11.5 ms is 1.17 TB/s, 57% of the 2,039 GB/s peak "
              "the roofline reads them at. The template has no knob for achieved DRAM bandwidth nor for the host's work "
              "per step (sampling, scheduling), so a latency-bound small batch is predicted fast; the large-batch "
              "TensorRT-LLM throughput rows, decode-dominated too, are within 13%.")
#: why a row misses by more than TOLERANCE (the arithmetic uses only the published figures and
#: the design's peak bandwidth)
NOTES: dict[str, str] = {
    "ttft b1 in128": ("at 128 tokens every projection is still memory-bound (a 4096 x 4096 fp16 weight is 33.5 MB: "
                      "16.5 us at 2,039 GB/s against 13.8 us of math at 156 TMAC/s), so the prediction is the 13.48 GB "
                      "weight read at peak bandwidth (6.6 ms) plus per-kernel launches; the published 16 ms is that "
                      "read at 0.84 TB/s (41% of peak): achieved bandwidth and fixed per-request overhead are not "
                      "modelled (see the NeMo rows). At 2048 tokens, compute-bound, the prediction is within 5%."),
    "run b1 128+20": _NEMO_NOTE, "run b2 128+20": _NEMO_NOTE, "run b4 128+20": _NEMO_NOTE,
    "run b8 128+20": _NEMO_NOTE + " From batch 1 to 8 the published latency grows by 95.5 ms; the prediction by "
                                  "46.7 ms, mostly the prefill of 8 x 128 tokens.",
}


@lru_cache(maxsize=1)
def _model():
    from symbiote.frontend import zoo
    from symbiote.frontend.zoo_gpt import LLAMA2_7B

    return zoo.build("gpt_decoder", **LLAMA2_7B, dtype="float16", weights="empty")


@lru_cache(maxsize=1)
def _template():
    from symbiote.backends.manager import get_template

    t = get_template("roofline")
    design = t.space.default() | DESIGN
    return t, design, t.space.encode(design)


@lru_cache(maxsize=None)
def step(kind: str, batch: int, length: int) -> tuple[float, dict]:
    """(latency in ms, capacity as a dict) of one prefill of ``length`` tokens or one decode
    step at context ``length``, at ``batch``."""
    from symbiote.ir.lower import lower
    from symbiote.search.phases import Phase, capacity, load_phase, workload_bits
    from symbiote.search.prepare import DEFAULT_PREPARE, prepare_graph

    phase = Phase(kind, batch=batch, seq=length) if kind == "prefill" else Phase(kind, batch=batch, context=length)
    graph = prepare_graph(load_phase(_model(), phase), DEFAULT_PREPARE)
    wl = lower(graph, default_bits=None)
    t, design, hw = _template()
    ms = float(np.asarray(t.cost(hw, wl).latency_s).sum()) * 1e3
    cap = capacity(graph, design, *workload_bits(wl, hw))
    return ms, cap.as_dict()


def run_ms(batch: int, input_len: int, output_len: int) -> tuple[float, float, float, dict]:
    """(run latency, prefill latency, mean decode-step latency, capacity at the last step), ms."""
    ttft, cap = step("prefill", batch, input_len)
    steps = output_len - 1
    if steps <= 0:
        return ttft, ttft, 0.0, cap
    last = input_len + steps - 1
    ctx = np.unique(np.linspace(input_len, last, min(DECODE_POINTS, steps)).round().astype(int))
    lat = [step("decode", batch, int(c))[0] for c in ctx]
    mean = float(np.trapezoid(lat, ctx) / (ctx[-1] - ctx[0])) if len(ctx) > 1 else lat[0]
    cap = step("decode", batch, int(ctx[-1]))[1]
    return ttft + steps * mean, ttft, mean, cap


def measure(f: Figure) -> dict:
    total, ttft, tpot, cap = run_ms(f.batch, f.input_len, f.output_len)
    predicted = {"ttft_ms": ttft, "latency_ms": total, "tokens_per_s": f.batch * f.output_len / (total / 1e3)}[f.metric]
    ratio = predicted / f.published
    row = {**asdict(f), "predicted": predicted, "ratio": ratio, "ttft_ms": ttft, "tpot_ms": tpot,
           "feasible": cap["feasible"], "capacity": cap["reason"]}
    row["within"] = abs(ratio - 1.0) <= TOLERANCE
    row["note"] = NOTES.get(f.name, "")
    return row


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    rows = [measure(f) for f in FIGURES]
    misses = [r["name"] for r in rows if not r["within"]]
    if args.json:
        json.dump({"design": DESIGN, "rows": rows, "misses": misses}, sys.stdout, indent=1)
        print()
        return 0
    print(f"Llama-2-7B fp16 on roofline as an A100 80GB SXM4 ({', '.join(f'{k}={v}' for k, v in DESIGN.items())})")
    print(f"{'config':<19} {'metric':<13} {'published':>10} {'predicted':>10} {'ratio':>6} {'ttft_ms':>8} {'tpot_ms':>8}  fits")
    for r in rows:
        flag = "" if r["within"] else "  <- miss"
        print(f"{r['name']:<19} {r['metric']:<13} {r['published']:>10.4g} {r['predicted']:>10.4g} {r['ratio']:>6.2f} "
              f"{r['ttft_ms']:>8.3g} {r['tpot_ms']:>8.3g}  {'yes' if r['feasible'] else 'NO'}{flag}")
    print("sources:")
    for src in dict.fromkeys(r["source"] for r in rows):
        print(f"  {src}")
    for r in rows:
        if not r["feasible"]:
            print(f"capacity, {r['name']}: {r['capacity']}")
    notes: dict[str, list[str]] = {}
    for r in rows:
        if r["note"]:
            notes.setdefault(r["note"], []).append(r["name"])
    for note, names in notes.items():
        print(f"note, {'; '.join(names)}: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
