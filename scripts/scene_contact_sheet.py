#!/usr/bin/env python
"""A contact sheet of varied samples: per class, four samples of `--appearance varied --distractors 2
--occluders 1`, each as its first, middle and last frame, with the dot's visible share in each.

Usage: python scripts/scene_contact_sheet.py [--seed 7] → artifacts/scene_contact_sheet.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from trajgen import GenerationConfig
from trajgen.content.bulk import make_samples
from trajgen.content.render import encode_png, put_text

ROOT = Path(__file__).resolve().parent.parent
SCALE, PER_CLASS, GAP, LABEL = 2, 4, 8, 90


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "scene_contact_sheet.png"))
    args = parser.parse_args()
    config = GenerationConfig(seed=args.seed, appearance="varied", distractors=2, occluders=1)
    classes = len(config.classes)
    made = make_samples(config, range(classes * PER_CLASS))
    frames = (0, config.frames // 2, config.frames - 1)
    cell = config.size * SCALE
    width = LABEL + PER_CLASS * (len(frames) * cell + GAP)
    height = 24 + classes * (cell + 22)
    sheet = np.full((height, width, 3), 255, np.uint8)
    put_text(
        sheet, "--appearance varied --distractors 2 --occluders 1: frames 0, 8, 15; the dot's visible share", (8, 16)
    )
    for label, name in enumerate(config.classes):
        top = 24 + label * (cell + 22)
        put_text(sheet, name, (8, top + cell // 2))
        rows = np.flatnonzero(made.labels == label)[:PER_CLASS]
        for k, row in enumerate(rows.tolist()):
            left = LABEL + k * (len(frames) * cell + GAP)
            for j, t in enumerate(frames):
                x = left + j * cell
                sheet[top : top + cell, x : x + cell] = made.videos[row, t].repeat(SCALE, 0).repeat(SCALE, 1)
                put_text(sheet, f"{made.visible[row, t]:.2f}", (x + 4, top + cell + 14), 0.38)
    Path(args.out).write_bytes(encode_png(sheet))
    print(args.out)


if __name__ == "__main__":
    main()
