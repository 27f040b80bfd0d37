#!/usr/bin/env python3
"""A spawn task for the integration tests: writes spawn.json in the cwd.

usage: spawn.py COUNT            COUNT entries {"item": "<i>", "mode": "ok"}
       spawn.py --modes a,b,c    one entry per mode, item = its position
"""
import json
import sys

if sys.argv[1] == "--modes":
    modes = sys.argv[2].split(",")
    entries = [{"item": str(i), "mode": m} for i, m in enumerate(modes)]
else:
    entries = [{"item": str(i), "mode": "ok"} for i in range(int(sys.argv[1]))]
with open("spawn.json", "w") as f:
    json.dump(entries, f)
print("spawned", len(entries))
