"""Checkpoints: the search state as one ``.npz`` file, written atomically.

The state is plain arrays plus a JSON header (iteration, evaluation count, elapsed
time, a fingerprint of the run's settings). Every random choice of iteration ``i``
comes from ``fold_in(PRNGKey(seed), i)``, so loading the state after iteration
``i`` and continuing gives exactly what the uninterrupted run gives.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from symbiote.errors import SearchError
from symbiote.fileio import atomic_path

FILENAME = "checkpoint.npz"


def save(path: str | os.PathLike, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, __header__=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
        f.flush()
        os.fsync(f.fileno())


def load(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    path = Path(path)
    if not path.exists():
        raise SearchError(f"{path}: no checkpoint to resume from")
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        header = json.loads(arrays.pop("__header__").tobytes().decode())
    except (OSError, ValueError, KeyError) as e:
        raise SearchError(f"{path}: unreadable checkpoint ({e})") from None
    return header, arrays
