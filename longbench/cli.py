"""The ``longbench`` command line: ``tasks``, ``download``, ``eval``, ``predict``, ``run``.

Each subcommand parses its arguments and calls the library; the library never imports this module.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from longbench.errors import LongBenchError


def _cmd_tasks(args: argparse.Namespace) -> int:
    from longbench.tasks import all_tasks

    header = ("task", "category", "lang", "metric", "max_new", "samples", "E", "chat", "first_line")
    rows = [
        (
            t.name,
            t.category,
            t.language,
            t.metric,
            str(t.max_new_tokens),
            str(t.samples),
            str(t.e_samples) if t.has_e else "-",
            "yes" if t.chat else "no",
            "yes" if t.first_line_only else "no",
        )
        for t in all_tasks(e=args.e)
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="longbench", description="LongBench, reproduced exactly.")
    sub = parser.add_subparsers(dest="command", required=True)

    tasks = sub.add_parser("tasks", help="print the task table")
    tasks.add_argument("--e", action="store_true", help="only the 13 LongBench-E tasks")
    tasks.set_defaults(func=_cmd_tasks)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except LongBenchError as error:
        print(f"longbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("longbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
