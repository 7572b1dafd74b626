"""Shard bytes do not move: fixed-seed runs give the sha256 recorded from trajgen 0.2.0.

The bytes depend on numpy, OpenCV and zlib too, so the comparison holds where those are the
versions the hashes were recorded with; elsewhere the test says which differ and skips."""

import hashlib

import pytest

from trajgen import GenerationConfig
from trajgen.making import generate
from trajgen.store.versions import byte_versions

RECORDED_WITH = {"numpy": "2.4.6", "opencv": "5.1.0", "zlib": "1.2.13"}
RUNS = {
    "default": (
        dict(n=40, checkpoint_every=16, seed=7),
        [
            "cde49d0387ded1162c16a7c9fa6f7bd686283e4a57ee0fa2e01b9f4f935b4123",
            "9148bc37d05527615d030c9e98924f26e8b683e973098c541e80bc6ffeadba36",
            "35d73bb7849685d8a9f96bd1a01d233acda95bb69b82f7a06b51c3242f646a0d",
        ],
    ),
    "trail": (
        dict(n=24, checkpoint_every=10, seed=3, style="trail", frames=8, size=32, compress_level=6),
        [
            "cbaf2540c4423ac4ce78d5e24ec66e147675c09314c6459d6040d1e2a70e01a3",
            "20bf2a6568996a4beab2b92cbde1f45e1991198fdd7f60379925746fbfd19f2e",
            "288a5c6618317c06ffb4fb023e8556883edfb0e97dac5875d4e0e39c6d705261",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_shard_bytes_match_those_recorded_from_0_2_0(name, tmp_path):
    installed = byte_versions()
    other = {
        k: f"installed {installed.get(k)}, recorded with {v}" for k, v in RECORDED_WITH.items() if installed.get(k) != v
    }
    if other:
        pytest.skip(f"the hashes were recorded with other versions: {other}")
    settings, expected = RUNS[name]
    generate(GenerationConfig(**settings), tmp_path / name, workers=1, check_space=False)
    shards = sorted((tmp_path / name / "shards").glob("shard-*.npz"))
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in shards] == expected
