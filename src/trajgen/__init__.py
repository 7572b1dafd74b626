"""trajgen: synthetic trajectory video datasets — sharded, crash-safe, resumable, byte-reproducible.

The names below are imported on first use, so `import trajgen` (and the command line's
start-up) stays light until numpy and OpenCV are needed.
"""

from importlib import import_module

_EXPORTS = {
    "ConfigError": "trajgen.errors",
    "TrajgenError": "trajgen.errors",
    "GenerationConfig": "trajgen.content.config",
    "Run": "trajgen.use.dataset",
    "open_run": "trajgen.use.dataset",
    "Sample": "trajgen.content.sample",
    "make_sample": "trajgen.content.sample",
}

__all__ = ["ConfigError", "GenerationConfig", "Run", "Sample", "TrajgenError", "__version__", "make_sample", "open_run"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trajgen")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def __getattr__(name: str):
    if name == "__version__":
        value = _version()
    elif name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'trajgen' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
