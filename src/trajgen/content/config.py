"""The generation config: frozen, validated field by field, JSON round trip, content fingerprint."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
from typing import Any

from trajgen.errors import ConfigError

DEFAULT_CLASSES = ("linear", "circular", "helical", "parabolic")
STYLES = ("dot", "trail")
APPEARANCES = ("plain", "varied")
MAX_DISTRACTORS, MAX_OCCLUDERS = 8, 4
VARIED_RADIUS = 0.3  # --appearance varied draws the dot radius within ± this share of --dot-radius
# The scene knobs, off at these values. A config.json leaves out a knob that is off, so a run
# that uses none of them has the config, fingerprint and bytes it had before they existed.
SCENE_DEFAULTS = {"appearance": "plain", "distractors": 0, "occluders": 0, "max_hidden": 0.25}

# Fields that decide what a sample looks like; the rest only decide how a run is laid out.
CONTENT_FIELDS = (
    "seed",
    "frames",
    "size",
    "coverage",
    "noise_scale",
    "augment_prob",
    "classes",
    "style",
    "dot_radius",
    "color",
    "background",
    "trail_length",
    "roll",
    "coverage_jitter",
    "placement",
    "speed_variation",
    *SCENE_DEFAULTS,
)


@dataclasses.dataclass(frozen=True)
class GenerationConfig:
    """Everything that defines a dataset. Sample i depends only on the content fields and i.

    ``dot_radius`` None means 5 px at 64×64, scaled with ``size``. ``color`` and
    ``background`` are RGB. ``coverage`` may be at most what leaves the dot radius of
    margin on every side (0.827 at 64×64 with the default dot); more is refused.

    The framing and timing vary per sample so that no single frame tells the class:
    the camera rolls by up to ±``roll`` degrees about its viewing axis, each sample's
    coverage is drawn within ±``coverage_jitter`` of ``coverage``, the path is placed
    anywhere within the share ``placement`` of the free margin (0: centred), and the
    speed along linear, circular and helical paths varies by up to ±``speed_variation``
    of its mean (1: from standing still to double speed).

    Harder data, each off by default and drawn per sample apart from its class
    (trajgen.content.scene): ``appearance`` "varied" draws the dot's colour, size and
    shading and the background; ``distractors`` squares and triangles move along paths of
    any class; ``occluders`` static bars cover the scene, and a sample whose dot they hide
    in more than ``max_hidden`` of its frames is drawn again.
    """

    n: int = 10_000
    checkpoint_every: int = 1_000
    seed: int = 42
    frames: int = 16
    size: int = 64
    coverage: float = 0.7
    noise_scale: float = 0.2
    augment_prob: float = 0.8
    classes: tuple[str, ...] = DEFAULT_CLASSES
    style: str = "dot"
    dot_radius: float | None = None
    color: tuple[int, int, int] = (0, 0, 255)
    background: tuple[int, int, int] = (255, 255, 255)
    trail_length: int = 5
    compress_level: int = 3  # the shards' deflate level (store.deflate: zlib-ng, 3 by default)
    roll: float = 180.0
    coverage_jitter: float = 0.1
    placement: float = 1.0
    speed_variation: float = 1.0
    appearance: str = "plain"
    distractors: int = 0
    occluders: int = 0
    max_hidden: float = 0.25

    def __post_init__(self) -> None:
        _validate(self)
        for f in dataclasses.fields(self):  # numpy scalars as Python numbers: float32 arithmetic would differ
            value = getattr(self, f.name)
            if type(value).__module__ == "numpy" and hasattr(value, "item"):
                object.__setattr__(self, f.name, value.item())

    @property
    def radius(self) -> float:
        """The dot radius in pixels at this frame size."""
        return self.dot_radius if self.dot_radius is not None else 5.0 * self.size / 64.0

    @property
    def margin(self) -> float:
        """Pixels every point keeps from the frame's edge: the largest dot radius a sample may draw."""
        return self.radius * (1 + VARIED_RADIUS) if self.appearance == "varied" else self.radius

    @property
    def scene(self) -> bool:
        """Whether any scene knob is on (the samples are then drawn by trajgen.content.scene)."""
        return self.appearance != "plain" or self.distractors > 0 or self.occluders > 0

    @property
    def num_shards(self) -> int:
        return -(-self.n // self.checkpoint_every)

    def shard_range(self, k: int) -> range:
        """Global sample indices held by shard k."""
        return range(k * self.checkpoint_every, min((k + 1) * self.checkpoint_every, self.n))

    def replace(self, **changes: Any) -> GenerationConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("classes", "color", "background"):
            d[key] = list(d[key])
        for key, off in SCENE_DEFAULTS.items():
            if d[key] == off and (key != "max_hidden" or not self.occluders):
                del d[key]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerationConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        d = dict(d)
        for key in ("classes", "color", "background"):
            if key in d and isinstance(d[key], list):
                d[key] = tuple(d[key])
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> GenerationConfig:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise ConfigError("config JSON must be an object")
        return cls.from_dict(d)

    def content_fingerprint(self) -> str:
        """sha256 of the fields that decide sample content (layout fields excluded)."""
        d = self.to_dict()
        content = {k: d[k] for k in CONTENT_FIELDS if k in d}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _fail(field: str, rule: str, value: Any) -> None:
    raise ConfigError(f"{field} (--{field.replace('_', '-')}) must be {rule}, got {value!r}")


def _validate(c: GenerationConfig) -> None:
    from trajgen.content.motions import MOTIONS  # the registry decides which class names exist

    def integer(field: str, lo: int, hi: int | None = None) -> None:
        v = getattr(c, field)
        ok = _is_int(v) and v >= lo and (hi is None or v <= hi)
        if not ok:
            _fail(field, f"an integer ≥ {lo}" if hi is None else f"an integer in [{lo}, {hi}]", v)

    integer("n", 1)
    integer("checkpoint_every", 1)
    integer("seed", 0, 2**63 - 1)
    integer("frames", 2, 10_000)
    integer("size", 8, 4096)
    integer("trail_length", 1, 1000)
    integer("compress_level", 0, 9)
    if not (_is_real(c.coverage) and 0 < c.coverage <= 1):
        _fail("coverage", "a number in (0, 1]", c.coverage)
    _check_coverage_fits(c)
    if not (_is_real(c.noise_scale) and 0 <= c.noise_scale <= 100):
        _fail("noise_scale", "a finite number ≥ 0 and ≤ 100", c.noise_scale)
    if not (_is_real(c.augment_prob) and 0 <= c.augment_prob <= 1):
        _fail("augment_prob", "a number in [0, 1]", c.augment_prob)
    if not (_is_real(c.roll) and 0 <= c.roll <= 180):
        _fail("roll", "a number of degrees in [0, 180]", c.roll)
    if not (_is_real(c.coverage_jitter) and 0 <= c.coverage_jitter <= 0.5):
        _fail("coverage_jitter", "a number in [0, 0.5]", c.coverage_jitter)
    if not (_is_real(c.placement) and 0 <= c.placement <= 1):
        _fail("placement", "a number in [0, 1]", c.placement)
    if not (_is_real(c.speed_variation) and 0 <= c.speed_variation <= 1):
        _fail("speed_variation", "a number in [0, 1]", c.speed_variation)
    if c.appearance not in APPEARANCES:
        _fail("appearance", f"one of {', '.join(APPEARANCES)}", c.appearance)
    integer("distractors", 0, MAX_DISTRACTORS)
    integer("occluders", 0, MAX_OCCLUDERS)
    if not (_is_real(c.max_hidden) and 0 <= c.max_hidden <= 1):
        _fail("max_hidden", "a number in [0, 1]", c.max_hidden)
    if c.dot_radius is not None and not (_is_real(c.dot_radius) and 0 < c.dot_radius <= c.size / 4):
        _fail("dot_radius", f"a number in (0, size/4 = {c.size / 4:g}]", c.dot_radius)
    if c.style not in STYLES:
        _fail("style", f"one of {', '.join(STYLES)}", c.style)
    if isinstance(c.classes, str) or not isinstance(c.classes, (tuple, list)) or not c.classes:
        _fail("classes", f"a non-empty list of {', '.join(MOTIONS)}", c.classes)
    unknown = [name for name in c.classes if name not in MOTIONS]
    if unknown:
        _fail(
            "classes",
            f"chosen from {', '.join(MOTIONS)} (unknown: {', '.join(map(str, unknown))})",
            ",".join(map(str, c.classes)),
        )
    if len(set(c.classes)) != len(c.classes):
        _fail("classes", "a list without repeats", ",".join(c.classes))
    for field in ("color", "background"):
        v = getattr(c, field)
        if not (isinstance(v, (tuple, list)) and len(v) == 3 and all(_is_int(x) and 0 <= x <= 255 for x in v)):
            _fail(field, "three integers R,G,B in [0, 255]", v)


def max_coverage(size: int, radius: float) -> float:
    """The largest coverage that still leaves the dot radius of margin on every side."""
    return (size - 1 - 2 * radius - 0.01) / size


def _check_coverage_fits(c: GenerationConfig) -> None:
    """--coverage above what leaves the dot its radius of margin on every side is refused,
    not silently capped (config.json then records the coverage that was used)."""
    if c.dot_radius is not None and not (_is_real(c.dot_radius) and 0 < c.dot_radius <= c.size / 4):
        return  # dot_radius gets its own error
    if c.appearance not in APPEARANCES:
        return  # appearance gets its own error
    cap = max_coverage(c.size, c.margin)
    if c.coverage > cap:
        raise ConfigError(
            f"coverage (--coverage) must be at most {int(cap * 1000) / 1000:.3f} at --size {c.size} with a "
            f"dot radius of {'up to ' if c.margin != c.radius else ''}{c.margin:g} px (every point keeps the dot's radius inside the frame), "
            f"got {c.coverage!r}"
        )
