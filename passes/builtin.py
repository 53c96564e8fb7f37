"""The built-in passes, registered through the same pluggy hook as third-party ones."""

from __future__ import annotations

from symbiote.passes.registry import hookimpl


@hookimpl
def symbiote_register_passes():
    from symbiote.passes.canonicalize import Canonicalize
    from symbiote.passes.fold_bn import FoldBatchNorm
    from symbiote.passes.fuse import FuseActivations, FuseBias
    from symbiote.passes.inline_if import InlineIf
    from symbiote.passes.layer_fusion import FuseLayers
    from symbiote.passes.precision import SetPrecision
    from symbiote.passes.prune import Prune, Sparsify
    from symbiote.passes.resize import ResizeChannels

    return [Canonicalize, FoldBatchNorm, FuseBias, FuseActivations, FuseLayers, InlineIf, Prune, Sparsify, ResizeChannels,
            SetPrecision]
