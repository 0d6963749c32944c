#!/usr/bin/env python3
"""Fails when a library under common/ includes from a library on a higher floor, or has no floor.

The floors are read from the table in docs/design.md (the backticked names of each "| N — ..." row), so
the page and the check cannot drift apart: a new library gets its floor by being added to the table.
Usage: check_floors.py <source root>
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
floors = {}
for line in (root / "docs/design.md").read_text().splitlines():
    row = re.match(r"\|\s*(\d)\s*—[^|]*\|([^|]*)\|", line)
    if row:
        for lib in re.findall(r"`([a-z_]+)`", row.group(2)):
            floors.setdefault(lib, int(row.group(1)))  # a row may name a lower library in passing

problems = []
for lib_dir in sorted(p for p in (root / "common").iterdir() if (p / "CMakeLists.txt").exists()):
    lib = lib_dir.name
    if lib not in floors:
        problems.append(f"common/{lib}: no floor in docs/design.md's table")
        continue
    for source in sorted(lib_dir.rglob("*")):
        if source.suffix not in (".h", ".cc"):
            continue
        for number, text in enumerate(source.read_text(errors="replace").splitlines(), 1):
            include = re.match(r'\s*#\s*include\s+"common/([a-z_]+)/', text)
            if include and include.group(1) in floors and floors[include.group(1)] > floors[lib]:
                other = include.group(1)
                problems.append(f"{source.relative_to(root)}:{number}: {lib} (floor {floors[lib]}) includes "
                                f"{other} (floor {floors[other]})")

for problem in problems:
    print(problem)
print(f"{len(floors)} libraries on floors, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
