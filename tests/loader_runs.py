"""The small run both loader test modules read, and its samples as plain numpy.load sees them."""

import json

import numpy as np
import pytest

from trajgen import GenerationConfig
from trajgen.making import generate

# 50 samples in shards of 8: 6 full shards and one of 2, so nothing divides evenly by accident
SMALL = GenerationConfig(n=50, checkpoint_every=8, seed=3, frames=4, size=16)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("loader") / "run"
    generate(SMALL, out, workers=1)
    return out


@pytest.fixture(scope="module")
def stored(run_dir):
    """Every shard's arrays concatenated in index order, read with plain numpy.load."""
    parts = []
    for p in sorted((run_dir / "shards").glob("shard-*.npz")):
        with np.load(p, allow_pickle=False) as z:
            parts.append({k: z[k] for k in ("videos", "labels", "index")})
    return {k: np.concatenate([p[k] for p in parts]) for k in ("videos", "labels", "index")}


def resumed(loader, k):
    """Indices of each batch of a whole pass of ``loader()`` (a new StatefulDataLoader each call), of its
    first k batches, and of the rest from a new loader given the state taken after those k."""
    whole = [batch[2].tolist() for batch in loader()]
    first = loader()
    it = iter(first)
    head = [next(it)[2].tolist() for _ in range(k)]
    state = first.state_dict()
    del it, first
    again = loader()
    again.load_state_dict(json.loads(json.dumps(state)))  # a checkpoint survives plain serialization
    return whole, head, [batch[2].tolist() for batch in again]
