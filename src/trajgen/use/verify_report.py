"""What verify found: each problem, the file it is in and its kind (damage, generation, other),
and the one line that sums them up with the advice that fits."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from trajgen.content.config import GenerationConfig
from trajgen.store.rundir import resume_command

SHOWN_DUPLICATES = 20  # duplicate-video lines listed in the report's text

DAMAGE = "damage"  # the files changed after they were made: restore or regenerate
GENERATION = "generation"  # the files are as the config made them: change the config
OTHER = "other"  # bookkeeping: incomplete run, stray files, manifest entries


@dataclass(frozen=True)
class Problem:
    file: str  # relative to the run directory
    message: str
    kind: str = OTHER  # DAMAGE, GENERATION or OTHER


@dataclass
class VerifyReport:
    run_dir: Path
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    total_shards: int = 0
    listed_shards: int = 0
    listed_samples: int = 0
    checked_shards: int = 0
    checked_samples: int = 0
    deep_checked: int = 0
    held_by: str | None = None  # the process writing the run ("pid 42 on host"), if one is
    config: GenerationConfig | None = None
    repairable: set[str] = field(default_factory=set)  # shard files whose bytes are not what the manifest records

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, file: str, message: str, kind: str = OTHER) -> None:
        self.problems.append(Problem(file, message, kind))

    @property
    def text(self) -> str:
        lines = [
            f"Checked {self.run_dir}: {self.listed_shards:,} of {self.total_shards:,} shards committed "
            f"({self.listed_samples:,} samples), {self.checked_shards:,} readable"
        ]
        lines += [f"  {note}" for note in self.notes]
        if self.ok:
            lines.append("OK: every check passed")
            return "\n".join(lines)
        by_file: dict[str, list[Problem]] = {}
        for p in self.problems:
            by_file.setdefault(p.file, []).append(p)
        lines.append(f"PROBLEMS: {len(self.problems)} in {len(by_file)} file(s)")
        duplicates = 0
        for p in (p for problems in by_file.values() for p in problems):
            if p.message.startswith("duplicate video"):
                duplicates += 1
                if duplicates > SHOWN_DUPLICATES:
                    continue
            lines.append(
                f"  {p.file}: {p.message}" + (" (made by the config, not damage)" if p.kind == GENERATION else "")
            )
        if duplicates > SHOWN_DUPLICATES:
            lines.append(f"  ... and {duplicates - SHOWN_DUPLICATES:,} more duplicate videos")
        return "\n".join(lines)

    @property
    def summary(self) -> str:
        """One line for the CLI's Error: what failed and what to do next."""
        files = list(dict.fromkeys(p.file for p in self.problems))
        if files == ["manifest.json"] and all("incomplete" in p.message for p in self.problems) and self.held_by:
            return (
                f"{self.run_dir} is still being written by {self.held_by} ({self.listed_shards} of "
                f"{self.total_shards} shards so far); wait for it to finish (trajgen status "
                f"{shlex.quote(str(self.run_dir))}), then verify again"
            )
        if files == ["manifest.json"] and all("incomplete" in p.message for p in self.problems):
            return f"{self.run_dir} is incomplete; finish it with: {resume_command(self.run_dir)}"
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        made = [p for p in self.problems if p.kind == GENERATION]
        if any(p.kind == DAMAGE for p in self.problems):
            if self.repairable:
                advice = (
                    f"remake the damaged shards with: trajgen repair {shlex.quote(os.fspath(self.run_dir))} "
                    f"(or restore them from a backup)"
                )
            else:
                advice = (
                    "restore the damaged shards from a backup, or make the run again with the same config "
                    "(the bytes will be identical)"
                )
            if made:
                advice += f"; {len(made)} other problem(s) come from the config itself, not damage (see above)"
        elif made:
            advice = "not damage: " + _generation_advice(self.config, made)
        else:
            advice = "see the report above for what to do with each"
        return f"verify found {len(self.problems)} problem(s) in {shown}; {advice}"


def _generation_advice(config: GenerationConfig | None, made: list[Problem]) -> str:
    """What to change when the shards are exactly what the config made."""
    advice = []
    if any("duplicate video" in p.message for p in made):
        small, more = [], []
        if config is not None:  # the settings that leave too few distinct videos
            for flag, value, limit, remedy in (
                ("--frames", config.frames, 8, "more --frames"),
                ("--size", config.size, 32, "a larger --size"),
                ("--coverage", config.coverage, 0.3, "a larger --coverage"),
            ):
                if value < limit:
                    small.append(f"{flag} {value:g}")
                    more.append(remedy)
        if config is not None and tuple(config.color) == tuple(config.background):
            why, more = "the dot's colour is the background's, so every video is blank", ["another colour"]
        elif small:
            why = f"{' '.join(small)} is too small to make every sample distinct"
        else:
            why = "its samples do not vary enough to be all distinct"
        more = more or ["more --frames", "a larger --size"]
        advice.append(
            f"the config that made this run produces duplicate videos ({why}); generate again with "
            f"{', '.join(more[:-1]) + ' or ' if len(more) > 1 else ''}{more[-1]}"
        )
    if any("unbalanced" in p.message for p in made):
        advice.append(
            "the classes were unbalanced when the run was made (its shards match the manifest); "
            "make the run again with this trajgen"
        )
    return "; ".join(advice)
