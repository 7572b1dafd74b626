"""verify on an unfinished run: what a stopped process left behind (an uncommitted shard, a file in
.tmp/) is for `trajgen resume` to clear as it finishes the run, not for the user to delete; the
space a run keeps for its last words on a full disk (.reserve/) is the run's own."""

import json

from trajgen import GenerationConfig
from trajgen.making import generate
from trajgen.store.manifest import manifest_bytes
from trajgen.store.reserve import Reserve
from trajgen.use.verify import verify_run


def stopped_run(tmp_path):
    """A run as a kill leaves it: the last shard renamed into shards/ but not committed, a temp file."""
    run = tmp_path / "run"
    generate(GenerationConfig(n=12, checkpoint_every=4, seed=1, size=16, frames=4), run, workers=1, check_space=False)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["shards"], manifest["status"] = manifest["shards"][:-1], "running"
    (run / "manifest.json").write_bytes(manifest_bytes(manifest))
    (run / ".tmp").mkdir(exist_ok=True)
    (run / ".tmp" / "shard-00001.npz.4242.0a1b2c3d4e5f.tmp").write_bytes(b"torn")
    Reserve(run).make()
    return run


def test_leftovers_of_a_stopped_run_point_to_resume(tmp_path):
    run = stopped_run(tmp_path)
    report = verify_run(run)
    leftovers = {p.file: p.message for p in report.problems if p.file.startswith(("shards/", ".tmp/"))}
    assert set(leftovers) == {"shards/shard-00002.npz", ".tmp/shard-00001.npz.4242.0a1b2c3d4e5f.tmp"}
    for message in leftovers.values():
        assert f"trajgen resume {run}" in message and "finishes the run" in message and "delete" not in message


def test_the_reserve_is_not_a_stray_file(tmp_path):
    run = stopped_run(tmp_path)
    assert not [p for p in verify_run(run).problems if ".reserve" in p.file or ".reserve" in p.message]
