"""How scenes are drawn: OpenCV's anti-aliased polygons, one call per shape for all of a sample's
frames (render.fill_polygons), and the dot's visible share under the occluders (scene._visible).

The frames of a video lie one after the other in memory, so a polygon drawn on them stacked
must never reach into the next frame, whether it lies inside its frame or crosses an edge."""

import numpy as np
import pytest

from trajgen.content.render import fill_polygons
from trajgen.content.scene import _visible

SIZE, FRAMES = 32, 4
COLOUR = np.array([[200.0, 30.0, 90.0]])


def _square(cx, cy, half):
    return np.array([[cx - half, cy - half], [cx + half, cy - half], [cx + half, cy + half], [cx - half, cy + half]])


def _distance_outside(x, y, cx, cy, half):
    """Pixel centres' distance outside an axis-aligned square (0 inside)."""
    return np.hypot(np.maximum(np.abs(x - cx) - half, 0), np.maximum(np.abs(y - cy) - half, 0))


@pytest.mark.parametrize(
    "centre",
    [(16.3, 15.6), (16.0, 1.2), (16.0, 30.4), (9.7, -3.0), (20.1, 35.0), (-2.0, 16.0)],
    ids=["inside", "top-edge", "bottom-edge", "past-top", "past-bottom", "past-left"],
)
def test_a_polygon_fills_its_own_frame_and_no_other(centre):
    """Frame 1 gets a square (inside, or crossing an edge); the other frames' polygons lie far outside
    the frame. Every pixel of frame 1 well inside the square has the colour, every pixel more than
    2 px outside it keeps the background, and the other frames are untouched."""
    rng = np.random.default_rng(0)
    videos = rng.integers(0, 256, (1, FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    before = videos.copy()
    polygons = np.stack([_square(-50.0, -50.0, 3.0)] * FRAMES)[None]
    cx, cy = centre
    polygons[0, 1] = _square(cx, cy, 6.0)
    fill_polygons(videos, [(polygons, COLOUR, None)])
    for t in (0, 2, 3):
        np.testing.assert_array_equal(videos[0, t], before[0, t])
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    inside = (np.abs(x - cx) <= 5.0) & (np.abs(y - cy) <= 5.0)
    far = _distance_outside(x, y, cx, cy, 6.0) > 2.0
    assert inside.any()
    assert np.all(videos[0, 1][inside] == COLOUR[0].astype(np.uint8))
    np.testing.assert_array_equal(videos[0, 1][far], before[0, 1][far])


def test_every_frame_gets_its_own_polygon_and_drawn_picks_the_samples():
    videos = np.zeros((3, FRAMES, SIZE, SIZE, 3), np.uint8)
    centres = [(8.0 + 5 * t, 30.5 - 9 * t) for t in range(FRAMES)]  # the last ones cross the bottom and top
    polygons = np.stack([np.stack([_square(cx, cy, 3.0) for cx, cy in centres])] * 3)
    drawn = np.array([True, False, True])
    fill_polygons(videos, [(polygons, np.repeat(COLOUR, 3, axis=0), drawn)])
    assert not videos[1].any()
    for i in (0, 2):
        for t, (cx, cy) in enumerate(centres):
            y, x = int(round(min(max(cy, 0), SIZE - 1))), int(round(cx))
            np.testing.assert_array_equal(videos[i, t, y, x], COLOUR[0].astype(np.uint8))
    np.testing.assert_array_equal(videos[0], videos[2])  # the same polygons, the same pixels


def test_visible_is_the_share_of_the_disc_no_bar_covers():
    centres = np.array([[20.0, 20.0], [20.0, 20.0], [20.0, 20.0], [20.0, 20.0]])
    radius = np.full(4, 5.0)
    bars = np.array(
        [
            [[40.0, 40.0, 4.0, 10.0, 0.0]],  # far away
            [[20.0, 20.0, 30.0, 30.0, 0.0]],  # over all of it
            [[20.0, 10.0, 20.0, 40.0, 0.0]],  # a level bar 20 px wide over the half above y = 20
            [[10.0, 20.0, 20.0, 40.0, 90.0]],  # an upright one over the half left of x = 20
        ]
    )
    seen = _visible(centres, radius, bars)
    assert seen[0] == 1.0 and seen[1] == 0.0
    assert abs(seen[2] - 0.5) <= 2 / 64 and abs(seen[3] - 0.5) <= 2 / 64
