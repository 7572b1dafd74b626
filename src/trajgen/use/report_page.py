"""report.html: one self-contained page (CSS inline, figures inline), nothing fetched, so it opens offline."""

from __future__ import annotations

import html

import numpy as np

from trajgen.content import quality
from trajgen.content.camera import max_coverage
from trajgen.store.rundir import resume_command
from trajgen.use.report_figures import coverage_figure, heat_figure, montage, params_figure, probe_figure, steps_figure
from trajgen.use.report_targets import (
    BAD,
    CLASS_TARGETS,
    COVERAGE_TOL,
    DERIVED,
    DESCRIBED,
    JSON_NAME,
    NA,
    OK,
    RUN_TARGETS,
    Measured,
)


def _pct(x, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def _mark(ok) -> str:
    if ok is None:
        return f'<span class="na" title="too few samples to measure">{NA}</span>'
    return f'<span class="ok">{OK}</span>' if ok else f'<span class="bad">{BAD}</span>'


def _target_text(key: str, data: dict) -> str:
    t = data["targets"][key]
    if key == "coverage_within_tol":
        return f"≥ {t['min']:.0%} within ±{t['tol']:g} of {t['coverage']:g}"
    if key == "in_frame":
        return f"{t['min']:.0%} keep {t['margin_px']:g} px from the edge"
    if key == "step_within_diameter":
        return f"≥ {t['min']:.0%} of steps ≤ {t['diameter_px']:g} px"
    if key == "single_frame_probe_accuracy":
        return f"≤ {t['max']:.0%} (goal {t['goal']:.0%}, chance {t['chance']:.0%})"
    if key == "duplicate_videos":
        return "none"
    return f"≥ {t['min']:.0%}" if "min" in t else f"≤ {t['max']:.0%}"


_LABELS = {
    "coverage_within_tol": "coverage within tolerance",
    "in_frame": "dot inside the frame",
    "step_within_diameter": "steps within the dot's diameter",
    "near_duplicate_rate": "near-duplicate paths (1 px)",
    "single_frame_probe_accuracy": "single-frame probe (worst frame)",
    "motion_probe_accuracy": "motion probe",
    "duplicate_videos": "identical videos",
    "appearance_probe_accuracy": "appearance probe",
    "visible_frames": "dot visible (least share of frames)",
}


def _value_text(key: str, value) -> str:
    if key == "duplicate_videos":
        return f"{value:,}"
    return _pct(value, 2 if key == "near_duplicate_rate" else 1)


def page(run, data: dict, m: Measured) -> str:
    config, classes = run.config, list(run.classes)
    e = html.escape
    checks = [ok for c in data["classes"].values() for ok in c["passed"].values()] + list(data["passed"].values())
    met = sum(ok is True for ok in checks)
    title = f"{run.root.name}: {met} of {len(checks)} quality targets met"

    head = [
        f"<h1>Sample quality: {e(run.root.name)}</h1>",
        f'<p class="meta">{data["samples"]:,} samples in {data["committed_shards"]:,} of {data["total_shards"]:,} '
        f"shards · {len(classes)} classes · {config.frames} frames of {config.size}×{config.size} px · "
        f"--coverage {config.coverage:g} · seed {config.seed} · trajgen {e(data['trajgen_version'])} · "
        f"made {e(data['made_at'])}</p>",
    ]
    if not data["complete"]:
        state = (
            "This run is in progress"
            if data["in_progress"]
            else f"This run is incomplete (finish it with: <code>{e(resume_command(run.root))}</code>)"
        )
        head.append(
            f'<p class="note">{state}: {data["committed_shards"]} of {data["total_shards"]} shards were '
            f"committed when this report was made. Every number and figure covers those "
            f"{data['samples']:,} committed samples only; make the report again when the run is complete.</p>"
        )
    if config.coverage > max_coverage(config.size, config.radius):
        head.append(
            f'<p class="note">--coverage {config.coverage:g} is more than the {max_coverage(config.size, config.radius):.2f} '
            f"that leaves the dot radius of margin, so paths are framed at most at that coverage.</p>"
        )
    missed = [
        f"{_LABELS[key]} ({name})"
        for name, c in data["classes"].items()
        for key, ok in c["passed"].items()
        if ok is False
    ] + [_LABELS[key] for key, ok in data["passed"].items() if ok is False]
    unmeasured = sum(ok is None for ok in checks)
    head.append(
        f'<p class="verdict {"poor" if missed or unmeasured else "good"}">{_mark(not missed)} {met} of '
        f"{len(checks)} targets met{'' if not missed else ' — not met: ' + e(', '.join(missed))}"
        f"{f'; {unmeasured} not measured (too few samples)' if unmeasured else ''}</p>"
    )

    # summary table: per-class rows, then run-wide rows spanning the class columns
    rows = [
        "<tr><th>measure</th><th>target</th>"
        + "".join(f'<th><a href="#class-{e(n)}">{e(n)}</a></th>' for n in classes)
        + "</tr>"
    ]
    for key in CLASS_TARGETS:
        cells = "".join(
            f"<td>{_value_text(key, data['classes'][n][key])} {_mark(data['classes'][n]['passed'][key])}</td>"
            for n in classes
        )
        rows.append(f"<tr><th>{_LABELS[key]}</th><td class='target'>{e(_target_text(key, data))}</td>{cells}</tr>")
    for key in (k for k in RUN_TARGETS if k in data["passed"]):
        rows.append(
            f"<tr><th>{_LABELS[key]}</th><td class='target'>{e(_target_text(key, data))}</td>"
            f"<td colspan='{len(classes)}' class='run'>{_value_text(key, data[key])} {_mark(data['passed'][key])}"
            f" <span class='scope'>whole run</span></td></tr>"
        )
    summary = f'<h2 id="summary">Summary</h2><table class="summary">{"".join(rows)}</table>'

    def card(
        heading: str,
        image: str | None,
        key: str | None,
        value,
        passed,
        what: str,
        wide: str = "",
        pixelated: bool = False,
    ) -> str:
        img = (
            f'<img class="{"pixelated" if pixelated else ""}" alt="{e(heading)}" src="data:image/png;base64,{image}">'
            if image
            else ""
        )
        if key is None:
            target = '<p class="target">no target: for looking</p>'
        else:
            target = (
                f'<p class="target">target {e(_target_text(key, data))} · measured '
                f"<b>{_value_text(key, value)}</b> {_mark(passed)}</p>"
            )
        return (
            f'<figure class="card {wide}"><figcaption><h3>{e(heading)}</h3></figcaption>'
            f'{img}{target}<p class="what">{what}</p></figure>'
        )

    chance = data["targets"]["single_frame_probe_accuracy"]["chance"]
    probes = [
        card(
            "Single-frame probe",
            probe_figure(data["single_frame_probe_per_frame"], chance),
            "single_frame_probe_accuracy",
            data["single_frame_probe_accuracy"],
            data["passed"]["single_frame_probe_accuracy"],
            "For each frame t alone: which 16×16 cell the dot is in, per-class cell counts on 80% of the samples, "
            "the most common class of the cell predicted for the other 20%. The worst frame counts: no single "
            "frame should tell the class.",
            wide="span2",
        ),
        card(
            "Motion probe",
            None,
            "motion_probe_accuracy",
            data["motion_probe_accuracy"],
            data["passed"]["motion_probe_accuracy"],
            "A linear discriminant on how the dot moves (speeds, tangential and normal accelerations, turning), "
            f"trained on 80% of {data['motion_probe_samples']:,} samples and scored on the rest: the motion should "
            "tell the class.",
        ),
        card(
            "Identical videos",
            None,
            "duplicate_videos",
            data["duplicate_videos"],
            data["passed"]["duplicate_videos"],
            "Videos whose bytes equal another video's anywhere in the run (8-byte hash of each video; "
            "<code>trajgen verify</code> names them).",
        ),
        card(
            "Appearance probe",
            None,
            "appearance_probe_accuracy",
            data["appearance_probe_accuracy"],
            data["passed"]["appearance_probe_accuracy"],
            "A linear discriminant on how each sample looks, blind to where anything moves: the mean and spread "
            "of each colour channel, the colours of the first frame's corners and, with <code>--appearance "
            "varied</code>, the drawn dot colour, size, shading and background. Near chance: the look never "
            "tells the class.",
        ),
    ]
    if "visible_frames" in data["passed"]:
        probes.append(
            card(
                "Dot visible",
                None,
                "visible_frames",
                data["visible_frames"],
                data["passed"]["visible_frames"],
                f"With <code>--occluders</code>: the least share of a sample's frames in which at least half the "
                f"dot shows (the <code>visible</code> array); occluders that hid it in more than --max-hidden "
                f"{config.max_hidden:g} of the frames were drawn again.",
            )
        )
    sections = [
        f'<section class="run-wide"><h2 id="run-wide">The whole run: probes and duplicates</h2>'
        f'<div class="grid">{"".join(probes)}</div></section>'
    ]

    steps = quality.step_lengths(m.points)
    covered = quality.coverage(m.points, config.size)
    diameter = 2 * config.radius
    for k, name in enumerate(classes):
        mine = m.labels == k
        c = data["classes"][name]
        ok = sum(v is True for v in c["passed"].values())
        if not mine.any():  # a run in progress whose first shards are smaller than the class count
            sections.append(
                f'<section data-class="{e(name)}" id="class-{e(name)}"><h2>{e(name)} <span class="count">'
                f"no committed samples yet {_mark(None)}</span></h2></section>"
            )
            continue
        params = {label: values[mine] for label, values in m.params.items()}
        described = ", ".join(label for label, _ in DESCRIBED if np.isfinite(m.params[label][mine]).any()) or "none"
        cards = [
            card(
                "Samples",
                montage(m.montage[k], None if config.scene else config.background),
                None,
                None,
                None,
                f"The first {len(m.montage[k])} committed samples of the class, each with all its frames blended "
                "into one picture, "
                "older frames fainter (as in <code>trajgen preview</code>).",
                pixelated=True,
            ),
            card(
                "Coverage",
                coverage_figure(covered[mine], config.coverage),
                "coverage_within_tol",
                c["coverage_within_tol"],
                c["passed"]["coverage_within_tol"],
                f"How much of the frame each path fills (mean {c['coverage_mean']:.3f}); the band is the target "
                f"±{COVERAGE_TOL:g} around --coverage {config.coverage:g}.",
            ),
            card(
                "Heat map",
                heat_figure(m.points[mine], config.size, config.radius),
                "in_frame",
                c["in_frame"],
                c["passed"]["in_frame"],
                f"Dot centres (points_2d) of every frame of every sample, per pixel. The dashed box is the "
                f"{config.radius:g} px margin every point must keep from the edge. A bright spot means "
                f"the class puts the dot there often, which a single frame could give away.",
            ),
            card(
                "Step length",
                steps_figure(steps[mine].ravel(), diameter),
                "step_within_diameter",
                c["step_within_diameter"],
                c["passed"]["step_within_diameter"],
                f"Distance the dot moves between consecutive frames (longest {c['max_step_px'] or 0:.1f} px); "
                f"longer than its diameter ({diameter:g} px) and the dot jumps instead of moving.",
            ),
            card(
                "Near-duplicate paths",
                None,
                "near_duplicate_rate",
                c["near_duplicate_rate"],
                c["passed"]["near_duplicate_rate"],
                f"Samples whose whole path, rounded to whole pixels, equals another sample's (rounded to 2 px: "
                f"{_pct(c['near_duplicate_rate_2px'], 2)}).",
            ),
            card(
                "Parameters",
                params_figure(params),
                None,
                None,
                None,
                f"From the descriptions: {e(described)}. From the arrays: "
                + "; ".join(f"{e(label)} ({e(source)})" for label, source in DERIVED)
                + ".",
                wide="span3",
            ),
        ]
        sections.append(
            f'<section data-class="{e(name)}" id="class-{e(name)}"><h2>{e(name)} <span class="count">'
            f"{c['samples']:,} samples · {ok} of {len(c['passed'])} targets met "
            f'{_mark(ok == len(c["passed"]))}</span></h2><div class="grid">{"".join(cards)}</div></section>'
        )

    foot = (
        f"<footer>Made by <code>trajgen report</code> from the committed shards of {e(str(run.root))}. "
        f"The same numbers are in <code>{JSON_NAME}</code> next to this page. Targets: DESIGN.md “Sample quality”. "
        f"The measures are <code>trajgen.quality</code>.</footer>"
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
        f"<body><header>{''.join(head)}</header>{summary}{''.join(sections)}{foot}</body></html>\n"
    )


_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2328;
       background: #f6f8fa; margin: 0 auto; max-width: 1320px; padding: 20px 28px 40px; }
h1 { font-size: 24px; margin: 4px 0 6px; }
h2 { font-size: 19px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
h2 .count { font-size: 13px; font-weight: normal; color: #57606a; margin-left: 10px; }
h3 { font-size: 14px; margin: 0 0 6px; }
.meta { color: #57606a; margin: 0 0 8px; }
.note { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 8px 12px; }
.verdict { font-size: 16px; font-weight: 600; margin: 8px 0; }
.verdict.good { color: #1a7f37; } .verdict.poor { color: #cf222e; }
table.summary { border-collapse: collapse; background: #fff; border: 1px solid #d0d7de; }
table.summary th, table.summary td { padding: 5px 12px; border-bottom: 1px solid #eaeef2; text-align: left; }
table.summary tr:first-child th { background: #f0f3f6; }
table.summary td.target { color: #57606a; }
table.summary td.run { text-align: center; }
.scope { color: #8c959f; font-size: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 14px; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 12px; margin: 0; }
.card.span2, .card.span3 { grid-column: 1 / -1; }
@media (min-width: 1200px) {
  .grid { grid-template-columns: repeat(4, 1fr); }
  .card.span2 { grid-column: span 2; } .card.span3 { grid-column: span 3; }
}
.card img { display: block; max-width: 100%; height: auto; margin: 0 auto 6px; }
.card img.pixelated { image-rendering: pixelated; width: 100%; }
.card .target { margin: 4px 0; }
.card .what { color: #57606a; font-size: 12.5px; margin: 4px 0 0; }
.ok { color: #1a7f37; font-weight: 700; } .bad { color: #cf222e; font-weight: 700; } .na { color: #8c959f; }
code { background: #eff1f3; padding: 0 4px; border-radius: 4px; font-size: 12.5px; }
a { color: #0969da; text-decoration: none; }
footer { margin-top: 30px; color: #57606a; font-size: 12.5px; }
"""
