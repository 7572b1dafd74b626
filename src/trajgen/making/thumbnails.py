"""The progress page's pictures: the first samples of a committed shard, each video's frames
blended into one picture, read without inflating the rest of the shard."""

from __future__ import annotations

import os
import zipfile

from trajgen.content.config import GenerationConfig
from trajgen.content.render import blend_trail, encode_png
from trajgen.store.manifest import load_manifest
from trajgen.store.rundir import RunError, RunPaths
from trajgen.store.shard_rows import first_rows

THUMBNAILS = 4  # the first samples of a shard: one of each class


def shard_thumbnails(shard, classes, background, count=THUMBNAILS):
    """[(class name, sample index, PNG bytes)] for the first ``count`` samples of a shard,
    each its frames blended into one picture (preview's trail); reads only those samples."""
    with zipfile.ZipFile(shard) as zf:
        videos = first_rows(zf, "videos.npy", count)
        labels = first_rows(zf, "labels.npy", count)
        index = first_rows(zf, "index.npy", count)
    return [
        (
            classes[int(label)] if 0 <= label < len(classes) else f"class {label}",
            int(i),
            encode_png(blend_trail(video, background)),
        )
        for video, label, i in zip(videos, labels, index)
    ]


class ShardPictures:
    """``pictures(shard)`` for the progress mirror: (shard, thumbnails) of the given committed shard,
    or of the newest one the manifest lists when ``shard`` is None; (None, []) when there is none."""

    def __init__(self, paths: RunPaths, config: GenerationConfig):
        self._paths, self._classes = paths, list(config.classes)
        self._background = None if config.scene else config.background  # a scene: each pixel's median

    def __call__(self, shard: str | None) -> tuple[str | None, list]:
        if shard is None:
            try:
                shards = load_manifest(self._paths)["shards"]
            except RunError:  # status and resume report a damaged manifest; the page just has no pictures
                return None, []
            if not shards:
                return None, []
            shard = os.fspath(self._paths.root / max(shards, key=lambda e: e["index"])["file"])
        return shard, shard_thumbnails(shard, self._classes, self._background)
