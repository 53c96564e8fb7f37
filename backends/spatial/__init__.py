"""The ``spatial`` template: a 2-D PE array with register files, a global buffer and DRAM, each
MAC layer mapped by a vectorized search over a fixed set of candidate loop nests (see
``backends/README.md``). ZigZag 3.x accelerator files read and write through
:func:`from_zigzag` / :func:`to_zigzag` (``interop_zigzag.py``)."""

from symbiote.backends.spatial.interop_zigzag import from_zigzag, to_zigzag

__all__ = ["from_zigzag", "to_zigzag"]
