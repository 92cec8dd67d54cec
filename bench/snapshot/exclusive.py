#!/usr/bin/env python3
"""The exclusive bytes in `cowfs subvolume show --json` output: "exclusive" (the CLI's name;
"exclusive_bytes" is accepted too), then the subvolume's id. Prints nothing, exit 1, when the
figure is missing or null.

    exclusive.py FILE
"""
import json
import sys


def main():
    doc = json.load(open(sys.argv[1]))
    if isinstance(doc, list) and len(doc) == 1:
        doc = doc[0]
    for key in ("exclusive_bytes", "exclusive"):
        if isinstance(doc.get(key), int):
            print(doc[key], doc.get("id", ""))
            return
    sys.exit("exclusive.py: no exclusive bytes in %s" % sys.argv[1])


if __name__ == "__main__":
    main()
