"""trajgen: synthetic trajectory video datasets — sharded, crash-safe, resumable, byte-reproducible."""

from importlib.metadata import PackageNotFoundError, version

from trajgen.config import GenerationConfig
from trajgen.dataset import Run, open_run
from trajgen.errors import ConfigError, TrajgenError
from trajgen.sample import Sample, make_sample

try:
    __version__ = version("trajgen")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["ConfigError", "GenerationConfig", "Run", "Sample", "TrajgenError", "__version__", "make_sample", "open_run"]
