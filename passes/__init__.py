"""symbiote.passes: graph-to-graph passes, pipelines and the pass registry.

    from symbiote.passes import Pipeline, parse_pipeline
    result = parse_pipeline("canonicalize,fold-bn,prune(ratio=0.3)")(graph)
    result.graph, result.modified, result.info

See README.md in this folder for the passes, their arguments, the pipeline syntax and
the ``node.meta`` keys passes leave for the cost models.
"""

from symbiote.passes.base import FixedPoint, Pass, PassResult, Pipeline, as_pipeline
from symbiote.passes.registry import get, hookimpl, parse_pass, parse_pipeline, plugin_manager, registered

__all__ = ["Pass", "PassResult", "Pipeline", "FixedPoint", "as_pipeline", "parse_pipeline", "parse_pass", "registered", "get", "hookimpl", "plugin_manager"]
