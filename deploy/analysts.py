#!/usr/bin/env python3
"""The operator's analysts file (deploy/bin/stack analyst ...): production's analysts as
one users.d file on the data volume, DATA_DIR/analysts/analysts.xml, which compose.yaml
mounts into ClickHouse's users.d. wiki_core/analysts.py writes it (standard library only:
this runs on the server's own python3).

    python3 deploy/analysts.py ensure FILE       # an empty file when there is none
    python3 deploy/analysts.py add FILE NAME     # prints the new password, once
    python3 deploy/analysts.py remove FILE NAME
    python3 deploy/analysts.py list FILE
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wiki_core.analysts import AnalystError, BadName, Roster  # noqa: E402

USAGE = "usage: analysts.py ensure FILE | add FILE NAME | remove FILE NAME | list FILE"


def main(argv: list[str]) -> int:
    if len(argv) < 2 or (argv[0] in ("add", "remove")) != (len(argv) == 3) or len(argv) > 3:
        print(USAGE, file=sys.stderr)
        return 2
    command, roster = argv[0], Roster(Path(argv[1]))
    try:
        if command == "ensure":
            roster.ensure()
        elif command == "list":
            for name in roster.names():
                print(name)
        elif command == "add":
            print(roster.add(argv[2]))
        elif command == "remove":
            roster.remove(argv[2])
        else:
            print(USAGE, file=sys.stderr)
            return 2
    except (AnalystError, BadName) as exc:
        print(f"stack analyst {command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
