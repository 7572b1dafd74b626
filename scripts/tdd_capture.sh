#!/usr/bin/env bash
# Usage: scripts/tdd_capture.sh PHASE [pytest args...]
#   PHASE is red, green or refactor; one phase per call.
#   Writes artifacts/tdd_PHASE.txt (or artifacts/tdd_TOPIC_PHASE.txt when TDD_TOPIC is set):
#   a provenance header, the full pytest output and its exit code.
#   Exits non-zero when the outcome contradicts the phase: a red run that passes,
#   or a green/refactor run that fails.
set -u
phase="${1:-}"
case "$phase" in
  red|green|refactor) shift ;;
  *) echo "Error: PHASE must be red, green or refactor (got '${phase}'). Usage: scripts/tdd_capture.sh PHASE [pytest args]" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mkdir -p artifacts
name="tdd_${phase}.txt"
[ -n "${TDD_TOPIC:-}" ] && name="tdd_${TDD_TOPIC}_${phase}.txt"
out="artifacts/${name}"
py="${PYTHON:-python}"
cmd=("$py" -m pytest "$@")
clean="clean"
[ -n "$(git status --porcelain 2>/dev/null)" ] && clean="dirty (uncommitted changes)"
{
  echo "# TDD capture: phase=${phase}${TDD_TOPIC:+ topic=${TDD_TOPIC}}"
  echo "timestamp_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "git_commit: $(git rev-parse HEAD 2>/dev/null || echo none)"
  echo "git_branch: $(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo none)"
  echo "git_tree: ${clean}"
  echo "python: $("$py" --version 2>&1)"
  "$py" - <<'PY' 2>/dev/null
import importlib
for name in ("pytest", "hypothesis", "numpy", "cv2", "click", "tqdm", "dask", "distributed", "torch", "trajgen"):
    try:
        mod = importlib.import_module(name)
        print(f"{name}: {getattr(mod, '__version__', '?')}")
    except Exception:
        print(f"{name}: not installed")
PY
  echo "cwd: $(pwd)"
  echo "hostname: $(hostname)"
  echo "os: $(uname -srmo)"
  echo "command: ${cmd[*]}"
  echo "----- pytest output -----"
} > "$out"
"${cmd[@]}" >> "$out" 2>&1
rc=$?
echo "----- exit code: ${rc} -----" >> "$out"
if [ "$phase" = red ] && [ "$rc" -eq 0 ]; then
  echo "Error: red phase expected failing tests, but pytest passed (see $out)" >&2; exit 1
fi
if [ "$phase" != red ] && [ "$rc" -ne 0 ]; then
  echo "Error: $phase phase expected passing tests, but pytest exited $rc (see $out)" >&2; exit 1
fi
if [ "$phase" = red ] && [ "$rc" -gt 2 ]; then
  echo "Error: red phase must fail in the tests (pytest exit 1 or 2), not with pytest exit $rc: no tests ran (see $out)" >&2; exit 1
fi
echo "$phase captured in $out (pytest exit $rc)"
