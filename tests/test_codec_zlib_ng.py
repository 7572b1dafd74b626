"""New runs deflate their shards with zlib-ng at --compress-level 3 (the default): plain raw deflate
that numpy, zipfile and ISA-L read; its version is pinned like the others; a zlib run (0.2.0's)
keeps zlib; without zlib-ng a new run says so in one line and records zlib."""

import json
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest

from runtools import run_cli
from trajgen import GenerationConfig
from trajgen.making import generate, resume
from trajgen.store import shards
from trajgen.store.versions import byte_versions

zlib_ng = pytest.importorskip("zlib_ng.zlib_ng", reason="zlib-ng is a dependency: pip install zlib-ng")
TINY = GenerationConfig(n=12, checkpoint_every=4, seed=11, size=16, frames=4)
ZLIB_1 = {"name": "zlib-deflate", "version": zlib.ZLIB_RUNTIME_VERSION, "level": 1}


def cut_run(run):
    """A run killed after its first shards, as a kill -9 leaves it."""
    args = ("--n", 12, "--checkpoint-every", 4, "--size", 16, "--frames", 4, "--workers", 1, "--out", run)
    assert run_cli("generate", *args, env={"TRAJGEN_FAULT": "exit@30"}).returncode != 0


def cli_without_zlib_ng(*args):
    """trajgen's command line in a process where zlib-ng cannot be imported."""
    code = (
        "import sys; sys.modules['zlib_ng'] = None; sys.modules['zlib_ng.zlib_ng'] = None; "
        "from trajgen.__main__ import run; sys.argv = ['trajgen'] + sys.argv[1:]; run()"
    )
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)


def test_the_default_is_zlib_ng_at_level_3_and_the_codec_says_so():
    assert GenerationConfig().compress_level == 3
    assert shards.shard_codec(3) == {"name": "zlib-ng-deflate", "version": zlib_ng.ZLIBNG_VERSION, "level": 3}
    assert shards.shard_codec(0) == {"name": "stored", "level": 0}


@pytest.mark.parametrize("level", [1, 3, 9])
def test_members_are_raw_deflate_made_by_zlib_ng_and_any_reader_reads_them(level, tmp_path):
    from trajgen.making.shardmaker import build_shard_arrays

    arrays = build_shard_arrays(GenerationConfig(n=8, checkpoint_every=8, size=32, frames=8), 0)[0]
    data = shards.encode_shard(arrays, level)
    path = tmp_path / "s.npz"
    path.write_bytes(data)
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            key = info.filename[: -len(".npy")]
            arr = shards._canonical(arrays[key])
            deflater = zlib_ng.compressobj(level, zlib_ng.DEFLATED, -15)
            head = shards._npy_header(arr)
            start = info.header_offset + 30 + len(info.filename) + len(info.extra)
            payload = data[start : start + info.compress_size]
            assert payload == deflater.compress(head) + deflater.compress(arr.tobytes()) + deflater.flush(), key
    with np.load(path) as npz:  # numpy (zlib's inflate) and trajgen's reader (ISA-L's) read it alike
        read = shards.read_shard(path)
        for key in shards.SHARD_KEYS:
            np.testing.assert_array_equal(npz[key], arrays[key])
            np.testing.assert_array_equal(read[key], arrays[key])


def test_the_zlib_ng_version_is_pinned_and_a_resume_under_another_is_refused(tmp_path):
    from importlib.metadata import version

    assert byte_versions()["zlib-ng"] == version("zlib-ng")  # the package, which pins its library
    run = tmp_path / "run"
    cut_run(run)
    assert json.loads((run / "config.json").read_text())["versions"]["zlib-ng"] == version("zlib-ng")
    other = {"TRAJGEN_VERSIONS_OVERRIDE": "zlib-ng=0.5.0"}
    refused = run_cli("resume", run, "--workers", 1, env=other)
    assert refused.returncode == 1 and "zlib-ng" in refused.stderr and "--allow-version-change" in refused.stderr
    assert run_cli("resume", run, "--workers", 1, "--allow-version-change", env=other).returncode == 0


def test_a_zlib_run_resumes_and_repairs_byte_for_byte_with_zlib(tmp_path, monkeypatch):
    """0.2.0's runs record zlib: their shards are made with zlib again, whatever the default now."""
    from trajgen.making import repair_run
    from trajgen.store import manifest as manifest_module

    monkeypatch.setattr(manifest_module, "shard_codec", lambda level: ZLIB_1)
    config = TINY.replace(compress_level=1)
    generate(config, tmp_path / "whole", workers=1)
    generate(config, tmp_path / "cut", workers=1)
    monkeypatch.undo()
    record = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    record["shards"], record["status"] = record["shards"][:1], "running"
    (tmp_path / "cut" / "manifest.json").write_bytes(manifest_module.manifest_bytes(record))
    (tmp_path / "cut" / "shards" / "shard-00002.npz").unlink()
    resume(tmp_path / "cut", workers=1)  # today's default codec is zlib-ng: the run keeps zlib
    (tmp_path / "cut" / "shards" / "shard-00000.npz").write_bytes(b"damaged")
    repair_run(tmp_path / "cut")
    assert json.loads((tmp_path / "cut" / "manifest.json").read_text())["codec"] == ZLIB_1
    for k in range(3):
        name = f"shards/shard-{k:05d}.npz"
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_without_zlib_ng_a_new_run_says_so_once_and_records_zlib(tmp_path):
    run = tmp_path / "run"
    result = cli_without_zlib_ng(
        "generate", "--n", 8, "--checkpoint-every", 4, "--size", 16, "--frames", 4, "--workers", 1, "--out", run
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "zlib-ng" in line]
    assert len(warnings) == 1 and warnings[0].startswith("Warning:") and "zlib" in warnings[0], result.stderr
    assert json.loads((run / "manifest.json").read_text())["codec"] == {
        "name": "zlib-deflate",
        "version": zlib.ZLIB_RUNTIME_VERSION,
        "level": 3,
    }


def test_without_zlib_ng_a_zlib_ng_run_is_refused_in_one_line(tmp_path):
    run = tmp_path / "run"
    cut_run(run)
    result = cli_without_zlib_ng("resume", run, "--workers", 1)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "zlib-ng" in errors[0] and "pip install zlib-ng" in errors[0], result.stderr


def test_a_zlib_run_does_not_record_zlib_ng_so_installing_it_never_stops_the_run(tmp_path, monkeypatch):
    from trajgen.store import manifest as manifest_module
    from trajgen.store.versions import byte_versions

    monkeypatch.setattr(manifest_module, "shard_codec", lambda level: ZLIB_1)
    generate(TINY, tmp_path / "run", workers=1)
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["versions"]
    assert "zlib-ng" not in recorded and "zlib-ng" not in byte_versions(ZLIB_1)
    assert "zlib-ng" in byte_versions(shards.shard_codec(3))
