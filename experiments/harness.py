"""Shared by the resumable experiment scripts: their command line and the provenance of each run."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return done.stdout.strip() or "unknown"


class Claims:
    """Lets several worker processes share one run order: each run goes to the first worker to lock it.

    Small models on a small CPU use the cores better as one-thread processes side by side than as one
    process with several threads. A claim is an flock on a file in the temp folder, so the claim of a
    killed worker goes with it and a restarted grid simply resumes.
    """

    def __init__(self, worker: bool = False):
        self.worker = worker
        self.threads = 1 if worker else 2
        self._held = {}  # result path -> the open, locked claim file

    @contextlib.contextmanager
    def claim(self, result: Path):
        """Yields whether this process should produce `result` now (missing, and no other worker on it)."""
        mine = self.hold(result)
        try:
            yield mine
        finally:
            if mine:
                self.release(result)

    def hold(self, result: Path) -> bool:
        """Claim `result` until `release(result)`: True when it is missing and no other worker holds it."""
        if not self.worker:
            return not result.exists()
        folder = Path(tempfile.gettempdir()) / "titans-ts-claims"
        folder.mkdir(exist_ok=True)
        key = hashlib.sha1(str(result.resolve()).encode()).hexdigest()[:16]
        handle = open(folder / f"{key}.lock", "w")  # noqa: SIM115 - held open across calls, closed by release
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        if result.exists():
            handle.close()
            return False
        self._held[result] = handle
        return True

    def in_progress(self, result: Path) -> bool:
        """Whether another worker is producing `result` now (it is missing and its claim is held)."""
        if result.exists() or result in self._held:
            return False
        if not self.hold(result):
            return True
        self.release(result)
        return False

    def release(self, result: Path) -> None:
        handle = self._held.pop(result, None)
        if handle is not None:
            handle.close()


def write_block(path: Path, start: str, end: str, lines: list[str]) -> None:
    """Replace what lies between the markers `start` and `end` in a committed document (README, model card)
    with `lines`, so the numbers there are the report's and cannot drift from it."""
    from titans_ts.io import atomic_write_text

    text = path.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{path}: no block ({start} ... {end}) to fill in; add the two markers where it goes")
    head, rest = text.split(start, 1)
    old_block, tail = rest.split(end, 1)
    indent = old_block.rsplit("\n", 1)[-1]  # the end marker keeps its indentation (a block inside a list item)
    indent = indent if not indent.strip() else ""
    atomic_write_text(path, head + start + "\n" + "\n".join(lines) + "\n" + indent + end + tail)


def read_config(path: str, tries: int = 5) -> dict:
    """The config file as it is now (a file caught while being written is read again a moment later)."""
    for attempt in range(tries):
        try:
            return json.loads(Path(path).read_text())
        except json.JSONDecodeError:
            if attempt == tries - 1:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


def cell_path(config: dict, dataset: str, horizon: int) -> Path:
    """Where a (dataset, horizon) cell of a validation check keeps its result."""
    return ROOT / config["runs"] / f"{dataset}_h{horizon}.json"


def run_cells(config: dict, run_cell) -> None:
    """Each (dataset, horizon) cell of config not yet done: `run_cell(dataset, horizon, config["memory"])`'s
    record with its provenance, one JSON file per cell, claimed so that workers share the cells."""
    import itertools

    from titans_ts.io import atomic_write_text

    for dataset, horizon in itertools.product(config["datasets"], config["horizons"]):
        path = cell_path(config, dataset, horizon)
        with config["_claims"].claim(path) as mine:
            if not mine:
                continue
            print(f"{path.name}: running", flush=True)
            started = time.time()
            record = run_cell(dataset, horizon, config["memory"])
            record |= {"git_commit": git_commit(), "wall_seconds": time.time() - started}
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(record, indent=1))


def config_main(doc: str, run, report) -> int:
    """`script CONFIG [--only-report] [--worker]`: run what is missing, write and print the report."""
    from titans_ts.io import atomic_write_text

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--only-report", action="store_true", help="aggregate the existing runs only")
    parser.add_argument(
        "--worker",
        action="store_true",
        help="one of several processes sharing the runs (start one per core): one thread each, runs claimed by lock",
    )
    args = parser.parse_args()
    config = read_config(args.config)
    config["_path"] = str(args.config)
    config["_claims"] = Claims(args.worker)
    if not args.only_report:
        run(config)
    text = report(config)
    atomic_write_text(ROOT / config["report"], text)
    print(text)
    return 0
