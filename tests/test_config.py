import dataclasses

import pytest

from trajgen import ConfigError, GenerationConfig


def test_defaults_match_the_design():
    c = GenerationConfig()
    assert (c.n, c.checkpoint_every, c.seed, c.frames, c.size) == (10_000, 1_000, 42, 16, 64)
    assert (c.coverage, c.noise_scale, c.augment_prob) == (0.7, 0.2, 0.8)
    assert c.classes == ("linear", "circular", "helical", "parabolic")
    assert c.style == "dot" and c.radius == 5.0 and c.color == (0, 0, 255)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        GenerationConfig().frames = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("frames", 1, "frames (--frames) must be an integer in [2, 10000]"),
        ("size", 7, "size (--size) must be an integer in [8, 4096]"),
        ("coverage", 0.0, "coverage (--coverage) must be a number in (0, 1]"),
        ("coverage", 1.01, "coverage (--coverage) must be a number in (0, 1]"),
        ("noise_scale", -0.1, "noise_scale (--noise-scale) must be a finite number ≥ 0"),
        ("augment_prob", 1.5, "augment_prob (--augment-prob) must be a number in [0, 1]"),
        ("augment_prob", -0.01, "augment_prob (--augment-prob) must be a number in [0, 1]"),
        ("classes", ("linear", "spiral"), "unknown: spiral"),
        ("classes", (), "classes (--classes) must be a non-empty list"),
        ("n", 0, "n (--n) must be an integer ≥ 1"),
        ("checkpoint_every", 0, "checkpoint_every (--checkpoint-every) must be an integer ≥ 1"),
        ("style", "glow", "style (--style) must be one of dot, trail"),
        ("frames", 2.5, "frames (--frames) must be an integer in [2, 10000]"),
    ],
)
def test_invalid_values_name_the_field_and_range(field, value, words):
    with pytest.raises(ConfigError) as e:
        GenerationConfig(**{field: value})
    assert words in str(e.value)
    assert "got" in str(e.value)


def test_json_round_trip_and_fingerprint():
    c = GenerationConfig(n=123, frames=17, classes=("parabolic", "linear"), seed=7)
    again = GenerationConfig.from_json(c.to_json())
    assert again == c
    assert again.content_fingerprint() == c.content_fingerprint()
    # layout fields do not change content; content fields do
    assert c.replace(n=5, checkpoint_every=3).content_fingerprint() == c.content_fingerprint()
    assert c.replace(seed=8).content_fingerprint() != c.content_fingerprint()


def test_unknown_json_field_is_refused():
    with pytest.raises(ConfigError, match="unknown config field"):
        GenerationConfig.from_dict({"frames": 16, "bogus": 1})


def test_shard_ranges_cover_all_indices():
    c = GenerationConfig(n=2_500, checkpoint_every=1_000)
    assert c.num_shards == 3
    assert [c.shard_range(k) for k in range(3)] == [range(0, 1000), range(1000, 2000), range(2000, 2500)]
