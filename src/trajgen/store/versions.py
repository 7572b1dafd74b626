"""The versions of everything that decides a shard's bytes.

A sample's bytes depend on trajgen (the pipeline), numpy (the random streams and the
arithmetic), OpenCV (the drawing) and the deflate encoder of the shard files (zlib; isal, whose
ISA-L reads the shards, is recorded too). A run records them in
config.json ("versions"); resume and every worker compare them with their own.

TRAJGEN_VERSIONS_OVERRIDE="numpy=0.0.0,opencv=1.0" makes this process report other
versions (tests use it to stand for a worker where other versions are installed).
"""

from __future__ import annotations

import os
import zlib

from trajgen.store.deflate import ZLIB_NG_NAME, zlib_ng

# name in config.json -> the pip package that provides it (zlib comes with the system's Python)
PACKAGES = {
    "trajgen": "trajgen",
    "numpy": "numpy",
    "opencv": "opencv-python-headless",
    "isal": "isal",
    "zlib-ng": "zlib-ng",
}
OVERRIDE_ENV = "TRAJGEN_VERSIONS_OVERRIDE"


ENCODERS = ("zlib", "isal", "zlib-ng")  # what deflates or inflates the shards; not what a sample is


def byte_versions(codec: dict | None = None) -> dict[str, str]:
    """{"trajgen", "numpy", "opencv", "zlib", "isal", "zlib-ng"} -> version string ("none" if not installed).
    ``codec``: a run's; zlib-ng is left out unless it is what deflates that run (a zlib run, as 0.2.0 made,
    does not depend on it, and must not be stopped by installing it)."""
    import numpy

    from trajgen import __version__
    from trajgen.content.render import opencv_version

    versions = {
        "trajgen": __version__,
        "numpy": numpy.__version__,
        "opencv": opencv_version(),
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "isal": _isal_version(),
        "zlib-ng": _package_version("zlib-ng") if zlib_ng() is not None else "none",  # its package pins its library
    }
    if codec is not None and codec.get("name") != ZLIB_NG_NAME:
        del versions["zlib-ng"]
    for item in filter(None, os.environ.get(OVERRIDE_ENV, "").split(",")):
        name, _, version = item.partition("=")
        versions[name.strip()] = version.strip()
    return versions


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _isal_version() -> str:
    try:
        import isal
    except ImportError:
        return "none"
    return getattr(isal, "__version__", "unknown")


def recorded_versions(config_file: dict) -> dict[str, str]:
    """The versions a run's config.json records (runs made before "versions" name only trajgen)."""
    versions = config_file.get("versions")
    if isinstance(versions, dict):
        return {str(k): str(v) for k, v in versions.items()}
    return {"trajgen": str(config_file.get("trajgen_version", "unknown"))}


def differences(recorded: dict[str, str], running: dict[str, str]) -> list[str]:
    """'numpy 1.26.4 → 2.0.0' for each recorded version that the running one differs from."""
    return [
        f"{name} {recorded[name]} → {running.get(name, 'none')}"
        for name in recorded
        if running.get(name, "none") != recorded[name]
    ]


def install_advice(recorded: dict[str, str], running: dict[str, str]) -> str:
    """How to get the recorded versions back, e.g. 'pip install numpy==1.26.4; zlib 1.2.13 (a system library)'."""
    changed = [name for name in recorded if running.get(name, "none") != recorded[name]]
    pins = [f"{PACKAGES[n]}=={recorded[n]}" for n in changed if n in PACKAGES and recorded[n] != "none"]
    removes = [PACKAGES[n] for n in changed if n in PACKAGES and recorded[n] == "none"]
    others = [
        f"{n} {recorded[n]}" + (" (a system library)" if n == "zlib" else "") for n in changed if n not in PACKAGES
    ]
    parts = ([f"pip install {' '.join(pins)}"] if pins else []) + (
        [f"pip uninstall {' '.join(removes)}"] if removes else []
    )
    return "; ".join(parts + others)
