"""Shared by the resumable experiment scripts: their command line and the provenance of each run."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return done.stdout.strip() or "unknown"


def config_main(doc: str, run, report) -> int:
    """`script CONFIG [--only-report]`: run what is missing, then write and print the config's report."""
    from titans_ts.io import atomic_write_text

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--only-report", action="store_true", help="aggregate the existing runs only")
    args = parser.parse_args()
    config = json.loads(args.config.read_text())
    config["_path"] = str(args.config)
    if not args.only_report:
        run(config)
    text = report(config)
    atomic_write_text(ROOT / config["report"], text)
    print(text)
    return 0
