"""Run mypy on sciweek/ and compare its errors with the checked-in baseline.

Usage:
    python tools/typecheck.py             # fails on any error not in the baseline, and on
                                          # baseline entries that no longer occur
    python tools/typecheck.py --shrink    # drops fixed errors from the baseline (never adds)
    python tools/typecheck.py --accept-new  # adds new errors too: only with a reason in the
                                            # commit message (e.g. a library's stubs changed)

The baseline lists errors without line numbers (path, message, error code), one a line, so
unrelated edits that move code do not disturb it; a repeated error appears as many times as it
occurs. The baseline may only shrink: fix an error, then run with --shrink.
"""

import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "tools" / "mypy-baseline.txt"


def run_mypy() -> tuple[list[str], Counter[str]]:
    """mypy's error lines as printed, and as baseline keys (path: message, no line number)."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--no-pretty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(2)
    lines = [line for line in result.stdout.splitlines() if ": error: " in line]
    return lines, Counter(baseline_key(line) for line in lines)


def baseline_key(line: str) -> str:
    location, message = line.split(": error: ", 1)
    path = location.split(":", 1)[0]
    return f"{path}: {message}"


def read_baseline() -> Counter[str]:
    if not BASELINE.exists():
        return Counter()
    text = BASELINE.read_text(encoding="utf-8")
    return Counter(line for line in text.splitlines() if line and not line.startswith("#"))


def write_baseline(errors: Counter[str]) -> None:
    header = (
        "# mypy errors not fixed yet (tools/typecheck.py). This list may only shrink:\n"
        "# fix an error, then run `python tools/typecheck.py --shrink`.\n"
    )
    body = "".join(f"{key}\n" for key in sorted(errors.elements()))
    BASELINE.write_text(header + body, encoding="utf-8")


def main(argv: list[str]) -> int:
    lines, current = run_mypy()
    baseline = read_baseline()
    new = current - baseline
    fixed = baseline - current
    if "--accept-new" in argv:
        write_baseline(current)
        print(f"Baseline rewritten: {sum(current.values())} errors.")
        return 0
    if "--shrink" in argv:
        write_baseline(baseline - fixed)
        print(f"Baseline shrunk by {sum(fixed.values())} to {sum((baseline - fixed).values())}.")
        baseline = baseline - fixed
        fixed = Counter()
    status = 0
    if new:
        status = 1
        print(f"mypy: {sum(new.values())} error(s) not in the baseline — fix them:")
        for line in lines:
            if new[baseline_key(line)] > 0:
                print("  " + line)
    if fixed:
        status = 1
        print(
            f"mypy: {sum(fixed.values())} baseline error(s) no longer occur — good; shrink the "
            "baseline with `python tools/typecheck.py --shrink` and commit it:"
        )
        for key in sorted(fixed.elements()):
            print("  " + key)
    if status == 0:
        print(f"mypy: no new errors ({sum(baseline.values())} in the baseline).")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
