#!/usr/bin/env python3
"""create_download_tasks.py: the spawn task of the example's Download Data stage.

Reads export.json (written by serialize_data in stage 1) from the current
directory, which is the job directory, and writes spawn.json there: one
entry per file, {"url": ..., "output_path": "downloads"}. shoal turns each
entry into one download task, with the job's params (data_id, basic_auth)
overlaid by the entry.
"""
import json
import os
import sys

INPUT = "export.json"
OUTPUT = "spawn.json"
OUTPUT_PATH = "downloads"  # relative to the job directory, wget's -P


def main():
    try:
        with open(INPUT) as f:
            export = json.load(f)
        files = export["files"]
        entries = [{"url": str(item["url"]), "output_path": OUTPUT_PATH} for item in files]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"create_download_tasks: cannot read {INPUT}: {e}", file=sys.stderr)
        return 1

    tmp = OUTPUT + ".tmp"
    with open(tmp, "w") as out:
        json.dump(entries, out, indent=2)
        out.write("\n")
    os.replace(tmp, OUTPUT)
    print(f"create_download_tasks: {len(entries)} download task(s) in {os.path.abspath(OUTPUT)}")
    for e in entries:
        print(f"  {e['url']} -> {e['output_path']}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
