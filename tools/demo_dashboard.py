"""A real monitored run, drawn: `newsflow run --monitor` on the embedded broker, fed Reuters
wires at a steady rate (with a few re-sends and bad messages), then the dashboard's main
panels rendered from the run's Prometheus to a PNG.

    make dashboard-demo                 # writes docs/dashboard.png (about 6 minutes)
    python tools/demo_dashboard.py --shared ../shared --minutes 5 --rate 3 --png docs/dashboard.png
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from kafka import KafkaProducer

from pipelines.dashboard import render_png
from pipelines.local.broker import EmbeddedBroker, free_port

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=3.0, help="articles per second")
    ap.add_argument("--png", type=Path, default=ROOT / "docs" / "dashboard.png")
    a = ap.parse_args(argv)
    with gzip.open(a.shared / "data" / "reuters21578.jsonl.gz", "rt") as f:
        stories = [s for s in map(json.loads, f) if len(s.get("text") or "") > 300]
    with EmbeddedBroker() as broker:
        broker.create_topics(["news.raw", "news.enriched", "news.facts", "news.deadletter"], 1)
        port = free_port()
        run = subprocess.Popen(
            [sys.executable, "-m", "pipelines", "run", "--bootstrap-servers", broker.bootstrap, "--monitor",
             "--metrics-port", str(port), "--progress", "off", "--output-dir", str(ROOT / "out" / "demo")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            prometheus = None
            assert run.stdout is not None
            while prometheus is None:
                line = run.stdout.readline()
                if not line:
                    raise RuntimeError("newsflow run ended before starting Prometheus")
                if found := re.search(r"Prometheus on (http://\S+)", line):
                    prometheus = found.group(1)
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
            end = time.monotonic() + a.minutes * 60
            sent = 0
            while time.monotonic() < end:
                story = stories[sent % len(stories)]
                article = {
                    "source_id": story["id"],
                    "title": story.get("title") or "",
                    "text": story["text"],
                    "url": f"https://demo.example/{story['id']}",
                    "published_at": story["date"] + "Z",
                }
                value = json.dumps(article).encode()
                if sent % 40 == 39:
                    value = b"\xff not an article"  # a poison message now and then
                producer.send("news.raw", key=article["url"].encode(), value=value)
                if sent % 25 == 24:  # and a re-send
                    producer.send("news.raw", key=article["url"].encode(), value=json.dumps(article).encode())
                sent += 1
                time.sleep(1 / a.rate)
            producer.flush()
            time.sleep(20)  # let the last records and rule evaluations land
            drawn = render_png(prometheus, a.png, a.minutes + 0.5)
            print(f"sent {sent} articles in {a.minutes:g} min; drew {drawn} panels to {a.png}")
        finally:
            run.send_signal(signal.SIGINT)
            run.communicate(timeout=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
