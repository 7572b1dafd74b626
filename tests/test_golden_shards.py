"""Shard bytes do not move: fixed-seed runs give recorded sha256s. The zlib runs are those trajgen
0.2.0 made (recorded from it; a 0.2.0 run keeps zlib, so its resume must still make them); the
zlib-ng run is a default run of today's trajgen.

The bytes depend on numpy, OpenCV and the encoder's version too, so the comparison holds where
those are the versions the hashes were recorded with; elsewhere the test says which differ and skips."""

import hashlib
import zlib

import pytest

from trajgen import GenerationConfig
from trajgen.making import generate
from trajgen.store import manifest
from trajgen.store.versions import byte_versions

RECORDED_WITH = {"numpy": "2.4.6", "opencv": "5.1.0"}
RUNS = {
    "0.2.0 default (zlib 1)": (
        dict(n=40, checkpoint_every=16, seed=7, compress_level=1),
        {"zlib": "1.2.13"},
        [
            "cde49d0387ded1162c16a7c9fa6f7bd686283e4a57ee0fa2e01b9f4f935b4123",
            "9148bc37d05527615d030c9e98924f26e8b683e973098c541e80bc6ffeadba36",
            "35d73bb7849685d8a9f96bd1a01d233acda95bb69b82f7a06b51c3242f646a0d",
        ],
    ),
    "0.2.0 trail (zlib 6)": (
        dict(n=24, checkpoint_every=10, seed=3, style="trail", frames=8, size=32, compress_level=6),
        {"zlib": "1.2.13"},
        [
            "cbaf2540c4423ac4ce78d5e24ec66e147675c09314c6459d6040d1e2a70e01a3",
            "20bf2a6568996a4beab2b92cbde1f45e1991198fdd7f60379925746fbfd19f2e",
            "288a5c6618317c06ffb4fb023e8556883edfb0e97dac5875d4e0e39c6d705261",
        ],
    ),
    "default (zlib-ng 3)": (
        dict(n=40, checkpoint_every=16, seed=7),
        {"zlib-ng": "1.1.0"},
        [
            "58fdc00173bf1b87d21a7eccfd354ae4f539d0bdcf09fd5aef2f8baeb05bffe1",
            "fd9161598eed8efbafba2b9d064b4a4e4bece112879359e46a8c0014215efd17",
            "5d6a511186ee27875fa8e97c5e8ee5e521f69e9f649ffcf0d0f8467ae94306fc",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_shard_bytes_match_those_recorded(name, tmp_path, monkeypatch):
    settings, encoder, expected = RUNS[name]
    installed = byte_versions()
    other = {
        k: f"installed {installed.get(k)}, recorded with {v}"
        for k, v in (RECORDED_WITH | encoder).items()
        if installed.get(k) != v
    }
    if other:
        pytest.skip(f"the hashes were recorded with other versions: {other}")
    if "zlib" in encoder:  # as a 0.2.0 run records it
        monkeypatch.setattr(
            manifest,
            "shard_codec",
            lambda level: {"name": "zlib-deflate", "version": zlib.ZLIB_RUNTIME_VERSION, "level": level},
        )
    generate(GenerationConfig(**settings), tmp_path / "run", workers=1, check_space=False)
    shards = sorted((tmp_path / "run" / "shards").glob("shard-*.npz"))
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in shards] == expected
