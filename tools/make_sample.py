"""Build pipelines/data/sample_articles.jsonl: the seed article, then real Reuters wires.

    python tools/make_sample.py ../shared

Reuters-21578 text is hard-wrapped with indented paragraphs; it is re-flowed here into
one paragraph per line so it reads like a modern feed. One story with an empty body is
kept on purpose: real archives carry such records and the pipeline dead-letters them.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "pipelines" / "data" / "sample_articles.jsonl"
WAR_WORDS = re.compile(r"\b(killed|wounded|injured|attack(ed)?|missile|gunboats?|tanker)\b", re.I)


def reflow(text: str) -> str:
    text = text.replace("\x03", "").strip()
    paragraphs = re.split(r"\n\s{3,}", text)
    return "\n".join(re.sub(r"\s*\n\s*", " ", p).strip() for p in paragraphs if p.strip())


def reuters(shared: Path) -> list[dict[str, object]]:
    with gzip.open(shared / "data" / "reuters21578.jsonl.gz", "rt") as fo:
        rows = [json.loads(line) for line in fo]
    war = [r for r in rows if r["text"] and WAR_WORDS.search(r["text"]) and "iran" in r["text"].lower()][:12]
    other = [r for r in rows if r["text"] and 400 < len(r["text"]) < 2500 and r not in war][:12]
    empty = [r for r in rows if not r["text"]][:1]
    picked = []
    for r in war + other + empty:
        picked.append(
            {
                "source_id": r["id"],
                "url": None,
                "title": r["title"],
                "text": reflow(r["text"]),
                "published_at": r["date"],
                "source": "Reuters",
                "language": "en",
            }
        )
    return picked


def main(shared: Path) -> None:
    title, _, body = (shared / "seed" / "trump-putin-call.txt").read_text().partition("\n")
    seed = {
        "source_id": "seed/trump-putin-call",
        "url": "https://example.org/news/trump-putin-call?utm_source=seed",
        "title": title.strip(),
        "text": body.strip(),
        "published_at": "2025-05-20T08:00:00Z",
        "source": "seed",
        "language": "en",
    }
    rows = [seed] + reuters(shared)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"wrote {len(rows)} articles to {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared"))
