"""The torch adapter, imported only by ``Run.torch_dataset`` (torch is an optional extra)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from trajgen.errors import ConfigError


class VideoDataset(Dataset):
    """(video, label): video float32 in [0, 1] laid out (C, T, H, W), as video tokenizers take it.

    Picklable, so it works in a DataLoader with worker processes; each worker keeps
    its own small cache of decoded shards."""

    def __init__(self, run, frames: int | None = None):
        total = run.config.frames
        if frames is None:
            frames = total
        if isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= total:
            raise ConfigError(f"frames must be an integer in [1, {total}] (the run has {total} frames per video), got {frames!r}")
        self.run, self.frames = run, frames

    def __len__(self) -> int:
        return len(self.run)

    def __getitem__(self, position: int):
        slot, row = self.run._locate(int(position))
        arrays = self.run._decoded(slot)
        video = torch.from_numpy(np.ascontiguousarray(arrays["videos"][row, : self.frames]))
        video = video.permute(3, 0, 1, 2).to(torch.float32).div_(255.0).contiguous()
        return video, int(arrays["labels"][row])

    def shard_sampler(self, seed: int = 0) -> "ShardShuffleSampler":
        """A shuffling sampler that keeps each shard's samples together, so random order costs one
        shard decode per shard instead of one per sample."""
        return ShardShuffleSampler(self.run._offsets, seed)


class ShardShuffleSampler(Sampler):
    """Shards in a random order, samples in a random order within each; a new order every epoch."""

    def __init__(self, offsets: list[int], seed: int = 0):
        self.offsets, self.seed, self.epoch = list(offsets), seed, 0

    def __len__(self) -> int:
        return self.offsets[-1]

    def __iter__(self):
        rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        for slot in rng.permutation(len(self.offsets) - 1).tolist():
            start, stop = self.offsets[slot], self.offsets[slot + 1]
            yield from (start + rng.permutation(stop - start)).tolist()
