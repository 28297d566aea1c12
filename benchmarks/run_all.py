"""Run every performance benchmark in this folder (``make bench``).

Each benchmark is a script with ``--quick`` and ``--out`` that writes JSON and Markdown into
``benchmarks/results/`` and exits non-zero when a target (a ratio measured in the same run, or an
absolute floor) is missed. This runner calls them one after another, so they do not compete for
the cores, and exits non-zero if any of them failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="pass --quick to every benchmark (smoke run)")
    ap.add_argument("names", nargs="*", help="benchmark script names without .py (default: all)")
    args = ap.parse_args()
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != "run_all.py" and not p.name.startswith("_"))
    if args.names:
        known = {p.stem: p for p in scripts}
        missing = [n for n in args.names if n not in known]
        if missing:
            print(f"error: unknown benchmark(s) {', '.join(missing)}; known: {', '.join(known)}", file=sys.stderr)
            return 2
        scripts = [known[n] for n in args.names]
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for script in scripts:
            print(f"== {script.stem}", flush=True)
            cmd = [sys.executable, str(script)]
            if args.quick:  # smoke runs never overwrite the committed results
                cmd += ["--quick", "--out", str(Path(tmp) / f"{script.stem}.json")]
            if subprocess.run(cmd, check=False).returncode != 0:
                failed.append(script.stem)
    print(f"{len(scripts) - len(failed)} passed, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
