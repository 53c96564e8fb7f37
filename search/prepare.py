"""Before a search: put each model in the form it would be deployed in.

The search costs a model layer by layer. Left as exported, a network carries batch norms
and activations as separate layers, each a full round trip of its tensor through DRAM,
which no accelerator flow would run: a compiler folds the batch norm into the convolution
before it and applies the activation in the producing layer. :data:`DEFAULT_PREPARE`
does that with exact passes, so the hardware-only and the joint search both start from
the deployed model; the model knobs and the exact check (onnxruntime) then act on the
prepared graph, which computes the same function as the original (the passes' own
conformance suite checks that).

On zoo:mobilenet_v2 at one systolic design (``--set rows=102 --set cols=17 --set
dataflow=os --set ifmap_sram_kb=8 --set filter_sram_kb=96 --set ofmap_sram_kb=8 --set
vector_width=32``), ``symbiote cost --prepare none`` gives EDP 3.692e7 pJ*s with DRAM 7036
of 7645 uJ (92%); prepared (``symbiote cost``'s default, as the search does, the same as
``symbiote transform zoo:mobilenet_v2 -p canonicalize,fold-bn,fuse-activations``) it gives
1.311e7 pJ*s with DRAM 2870 of 3424 uJ (84%).
"""

from __future__ import annotations

from symbiote.errors import SearchError, SymbioteError

#: exact passes run on every model before a search or ``symbiote cost`` (``RunConfig.prepare`` / ``--prepare``)
DEFAULT_PREPARE = "canonicalize,fold-bn,fuse-activations"


def parse_prepare(pipeline: str):
    """The pipeline of ``--prepare`` (``None`` for ``"none"`` or empty). A pass that is not
    exact is refused: the model's changes are the search's knobs, and the exact check
    compares candidates against the prepared graph."""
    from symbiote.passes.registry import parse_pipeline

    if not pipeline or pipeline.strip().lower() == "none":
        return None
    try:
        pipe = parse_pipeline(pipeline)
    except SymbioteError as e:
        raise SearchError(f"--prepare {pipeline!r}: {e}") from None
    inexact = [p.name for p in pipe.passes if not p.exact]
    if inexact:
        raise SearchError(f"--prepare {pipeline!r}: {', '.join(inexact)} would change the model's function; "
                          "only exact passes may prepare a model (model changes are the search's knobs)")
    return pipe


def canonical(pipeline: str) -> str:
    """The pipeline's canonical text (spacing and argument spelling do not matter)."""
    pipe = parse_prepare(pipeline)
    return "none" if pipe is None else pipe.spec()


def prepare_graph(graph, pipeline: str):
    """The graph after the passes of ``pipeline`` (:func:`parse_prepare`)."""
    pipe = parse_prepare(pipeline)
    return graph if pipe is None else pipe(graph).graph
