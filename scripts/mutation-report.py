"""Summarise the last `mutmut run` (make mutation): counts per module, every mutant that was
not killed with its diff, written to .mutation/report.txt and summarised on stdout.

    python scripts/mutation-report.py          # after `mutmut run` in the repository root

A mutant that survived is a change to a guarantee-carrying module that no test noticed: write
the test that kills it, or, if the mutant cannot change behaviour (equivalent), say why in
docs/development.md#mutation-testing. Exits 1 when a mutant survived.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".mutation" / "report.txt"
# mutmut's own exit-code meanings (mutmut/stats.py).
STATUS = {
    1: "killed", 3: "killed", 37: "killed",  # 37: refused by the type checker
    0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
    36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout",
    None: "not checked",
}  # fmt: skip
ORDER = ("killed", "survived", "timeout", "no tests", "suspicious", "skipped", "not checked")


def modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def results(module: str) -> dict[str, str]:
    meta = ROOT / "mutants" / f"{module}.meta"
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: STATUS.get(code, "suspicious") for name, code in codes.items()}


def diff(name: str) -> str:
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "mutmut"), "show", name],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return shown.stdout.strip() or shown.stderr.strip()


def main() -> int:
    lines, totals, survivors = [], Counter[str](), 0
    for module in modules():
        statuses = results(module)
        counts = Counter(statuses.values())
        totals += counts
        figures = ", ".join(f"{counts[s]} {s}" for s in ORDER if counts[s])
        lines.append(f"{module}: {len(statuses)} mutants" + (f": {figures}" if figures else ""))
    lines.append("total: " + ", ".join(f"{totals[s]} {s}" for s in ORDER if totals[s]))
    summary = list(lines)
    for module in modules():
        for name, status in sorted(results(module).items()):
            if status in ("killed", "not checked"):
                continue
            survivors += status == "survived"
            lines += ["", f"== {name}: {status}", diff(name)]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(summary))
    print(f"mutants not killed, with their diffs: {OUT.relative_to(ROOT)}")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
