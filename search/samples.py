"""The calibration and the evaluation samples of a run: two disjoint sets of feeds.

Quantizer ranges and the proxy's probes use the *calibration* samples; every accuracy
figure that is reported or decides feasibility is measured on the *evaluation* samples,
which the search never saw. The file that gives the evaluation samples may hold a
``labels`` array (integer classes, one entry per sample): the task's accuracy is then
measured too (:mod:`symbiote.search.measures`).

* ``--eval-data FILE.npz``: evaluation = every sample of the file; calibration =
  ``--calibration FILE.npz`` (all of it; another file) when given, else seeded random inputs;
* ``--calibration FILE.npz`` alone: its first half (rounded up) calibrates, the rest
  evaluates (it needs at least 2 samples);
* neither: seeded random inputs, ``calibration_samples`` of them from seeds
  ``seed, seed+1, ...`` and ``eval_samples`` (default :data:`EVAL_SAMPLES`) from a second
  stream starting at ``seed + EVAL_SEED_OFFSET``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from symbiote.errors import SearchError

#: evaluation samples drawn when no file gives them
EVAL_SAMPLES = 64
#: the evaluation's seeds start this far from the calibration's (disjoint streams)
EVAL_SEED_OFFSET = 1_000_003


@dataclass(frozen=True)
class Split:
    calibration: list[dict]
    evaluation: list[dict]
    source: str          # how the split was made (for the report)
    #: per evaluation sample, its labels (``labels`` in the file that gave the evaluation
    #: samples); None: no labels, no task accuracy
    labels: list | None = None


def split(graph, calibration: str | Path | None = None, eval_data: str | Path | None = None,
          calibration_samples: int = 4, eval_samples: int = EVAL_SAMPLES, seed: int = 0) -> Split:
    """The run's two sample sets (see the module doc)."""
    from symbiote.search.accuracy import calibration_inputs

    if eval_data is not None:
        if calibration is not None and Path(calibration).resolve() == Path(eval_data).resolve():
            raise SearchError(f"--calibration and --eval-data are the same file ({eval_data}): the evaluation must "
                              "be data the search never saw; give --calibration alone (it is split in half) or "
                              "two files")
        ev = calibration_inputs(graph, eval_data)
        cal = calibration_inputs(graph, calibration, calibration_samples, seed=seed)
        how = (f"calibration: {calibration}" if calibration else f"calibration: {calibration_samples} seeded random") \
            + f"; evaluation: {eval_data} ({len(ev)} samples)"
        return Split(cal, ev, how, labels_of(eval_data, len(ev)))
    if calibration is not None:
        feeds = calibration_inputs(graph, calibration)
        if len(feeds) < 2:
            raise SearchError(f"--calibration {calibration}: {len(feeds)} sample(s); at least 2 are needed to keep "
                              "an evaluation half apart, or give --eval-data FILE.npz")
        half = (len(feeds) + 1) // 2
        labels = labels_of(calibration, len(feeds))
        return Split(feeds[:half], feeds[half:], f"{calibration}: samples 0-{half - 1} calibrate, "
                                                 f"{half}-{len(feeds) - 1} evaluate",
                     labels[half:] if labels is not None else None)
    cal = calibration_inputs(graph, None, calibration_samples, seed=seed)
    ev = calibration_inputs(graph, None, eval_samples, seed=seed + EVAL_SEED_OFFSET)
    return Split(cal, ev, f"seeded random inputs: {len(cal)} calibrate (seed {seed}), {len(ev)} evaluate "
                          f"(seed {seed + EVAL_SEED_OFFSET})")


def labels_of(path: str | Path, samples: int) -> list | None:
    """The ``labels`` array of an npz file, one entry per sample (its first axis), or None."""
    import numpy as np

    with np.load(Path(path)) as z:
        if "labels" not in z:
            return None
        lab = np.asarray(z["labels"])
    if not np.issubdtype(lab.dtype, np.integer):
        raise SearchError(f"{path}: 'labels' must hold integer class indices, not {lab.dtype}")
    if lab.ndim == 0 or lab.shape[0] != samples:
        raise SearchError(f"{path}: 'labels' has {lab.shape[0] if lab.ndim else 0} entries for {samples} samples "
                          "(one per sample along the first axis)")
    return [lab[i] for i in range(samples)]
