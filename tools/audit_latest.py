"""Dependency audit through PyPI's project pages, for machines where pip-audit's services
(PyPI's per-version JSON, OSV) are out of reach.

    make audit-latest

PyPI's project JSON (``/pypi/NAME/json``) lists the known vulnerabilities (from OSV) of
the project's latest release. For every installed distribution at its latest release that
list is exact; a distribution behind its latest release cannot be checked this way and is
listed as such (and flagged if its own release was yanked). Exit status 1 if any checked
distribution has a vulnerability or a yanked release.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from typing import Any

PYPI = "https://pypi.org/pypi"
OURS = {"newsflow"}


def project(name: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{PYPI}/{name}/json", timeout=30) as r:
            return json.load(r)  # type: ignore[no-any-return]
    except (urllib.error.URLError, TimeoutError, ValueError):
        return None


def main() -> int:
    names = ((d.metadata["Name"].lower(), d.version) for d in metadata.distributions())
    installed = {name: version for name, version in names if name not in OURS}
    with ThreadPoolExecutor(8) as pool:
        pages = dict(zip(installed, pool.map(project, installed), strict=True))
    checked, behind, unreachable, problems = 0, [], [], []
    for name, version in sorted(installed.items()):
        page = pages[name]
        if page is None:
            unreachable.append(name)
            continue
        files = page.get("releases", {}).get(version, [])
        if files and all(f.get("yanked") for f in files):
            problems.append(f"{name} {version}: yanked ({files[0].get('yanked_reason') or 'no reason given'})")
        latest = page["info"]["version"]
        if version != latest:
            behind.append(f"{name} {version} (latest {latest})")
            continue
        checked += 1
        for vuln in page.get("vulnerabilities", []):
            fixed = ", ".join(vuln.get("fixed_in") or []) or "no fix yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            problems.append(f"{name} {version}: {vuln.get('id')} ({aliases}); fixed in {fixed}")
    print(f"{len(installed)} installed distributions: {checked} at their latest release checked against PyPI's "
          f"vulnerability list; {len(behind)} behind their latest release (not checkable here); "
          f"{len(unreachable)} not found on PyPI")  # fmt: skip
    for line in behind:
        print(f"  not checked: {line}")
    for name in unreachable:
        print(f"  not found: {name}")
    for line in problems:
        print(f"  PROBLEM: {line}")
    print("no known vulnerabilities in the checked distributions" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
