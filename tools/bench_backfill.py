"""Benchmark: backfill throughput against bare spaCy on the same texts, both cores used.

    make bench-backfill                      # the whole Reuters-21578 archive (~30 min)
    python -m tools.bench_backfill --limit 4000

1. Bare spaCy: ``nlp.pipe(texts, n_process=2)`` over the archive's non-empty texts, cut to
   the length the pipeline gives spaCy, with the same model (loading it is not timed).
2. ``newsflow backfill ARCHIVE --workers 2`` into a fresh folder, timed from the command's
   start to its exit (so start-up and model loading count against it).
3. Bare spaCy again; the ratio uses the mean of the two spaCy times.

Prints both rates and their ratio (pipeline time over the same texts / spaCy time; target
>= 0.85), and the summary's accounting: every record written, a duplicate, or a dead letter.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from pipelines.io.avro import read_container
from pipelines.nlp.entities import MAX_CHARS, load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "reuters21578.jsonl.gz"


def bare_spacy(texts: list[str], processes: int) -> float:
    nlp, model, _ = load_model(as_shipped=True)
    list(nlp.pipe(texts[:20]))  # warm up
    start = time.perf_counter()
    for _doc in nlp.pipe(texts, n_process=processes, batch_size=64):
        pass
    seconds = time.perf_counter() - start
    print(f"bare spaCy ({model}, n_process={processes}): {len(texts)} texts in {seconds:.1f} s, "
          f"{len(texts) / seconds:.1f} texts/s", flush=True)  # fmt: skip
    return seconds


def account(out: Path, lines: int) -> str:
    """Every input line, from the files alone: written (new or marked duplicate) or a dead
    letter with a reason; none missing, none twice."""
    outcomes: dict[int, str] = {}
    twice = 0
    for name in ("enriched", "deadletter"):
        for path in sorted((out / name).rglob("*.avro")):
            for r in read_container(path):
                line = r["archive"]["record"]
                twice += line in outcomes
                if name == "deadletter":
                    outcomes[line] = f"dead letter: {r['stage']}/{r['reason']}"
                else:
                    outcomes[line] = "duplicate" if r["duplicate_of"] else "written"
    missing = lines - len(outcomes)
    tally = ", ".join(f"{k} {v}" for k, v in Counter(outcomes.values()).most_common())
    return f"from the files: {tally}; missing {missing}, twice {twice}"


def pipeline(archive: Path, workers: int, lines: int) -> tuple[float, str, str]:
    with tempfile.TemporaryDirectory(prefix="newsflow-bench-backfill-") as out:
        start = time.perf_counter()
        done = subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "pipelines", "backfill", str(archive), "--output-dir", out,
             "--workers", str(workers), "--progress", "log", "--metrics-port", "0"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"backfill failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return seconds, done.stdout, account(Path(out), lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--limit", type=int, default=None, help="Only the first N records of the archive.")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    with gzip.open(a.data, "rb") as fo:
        lines = [line for line in fo if line.strip()][: a.limit]
    texts = [t[:MAX_CHARS] for t in (json.loads(line).get("text") or "" for line in lines) if t.strip()]
    with tempfile.TemporaryDirectory(prefix="newsflow-bench-archive-") as tmp:
        archive = Path(tmp) / "archive.jsonl.gz"
        with gzip.open(archive, "wb") as fo:
            fo.writelines(lines)
        print(f"{len(lines)} records ({len(texts)} with text) from {a.data}", flush=True)
        # spaCy before and after the pipeline: this machine's speed drifts by ~10 % over
        # minutes, and the mean of the two brackets the pipeline's run.
        before = bare_spacy(texts, a.workers)
        pipe_s, summary, accounting = pipeline(archive, a.workers, len(lines))
        after = bare_spacy(texts, a.workers)
        spacy_s = (before + after) / 2
    print(summary[summary.find("newsflow backfill summary") :].rstrip())
    accounted = re.search(r"accounted for\s+(\d+) of (\d+) \((all|NOT all)\)", summary)
    print(f"\nbackfill ({a.workers} workers): {len(lines)} records in {pipe_s:.1f} s, "
          f"{len(lines) / pipe_s:.1f} articles/s ({len(texts) / pipe_s:.1f} texts/s)")  # fmt: skip
    print(f"bare spaCy: {before:.1f} s before, {after:.1f} s after; mean {spacy_s:.1f} s, "
          f"{len(texts) / spacy_s:.1f} texts/s")  # fmt: skip
    print(f"ratio to bare spaCy on the same texts: {spacy_s / pipe_s:.3f}  (target >= 0.85)")
    print(f"every record accounted for (metrics): {accounted.group(3) == 'all' if accounted else 'unknown'}")
    print(accounting)


if __name__ == "__main__":
    main()
