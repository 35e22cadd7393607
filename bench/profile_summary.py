"""Summarise a py-spy raw profile (collapsed stacks) written by `foundation.py --profile DIR`.

    python bench/profile_summary.py DIR/profile-a.txt [--top 25] [--focus SUBSTRING]

Prints the functions with the most samples on CPU ("self") and the ones most often on the stack
("total", each function counted once per sample). --focus keeps only samples whose stack contains
SUBSTRING (e.g. `feed_update`), so start-up and idle time do not dilute the picture.
"""

from __future__ import annotations

import argparse
from collections import Counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--focus", help="only samples whose stack contains this text")
    parser.add_argument("--exclude", action="append", default=[], help="drop samples whose stack contains this")
    args = parser.parse_args()
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    with open(args.path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or (args.focus and args.focus not in stack) or any(x in stack for x in args.exclude):
                continue
            n = int(count)
            samples += n
            frames = stack.split(";")
            own[frames[-1]] += n
            for frame in set(frames):
                total[frame] += n
    print(f"{samples} samples" + (f" containing {args.focus!r}" if args.focus else ""))
    for title, counter in (("self", own), ("total", total)):
        print(f"\n-- {title} --")
        for frame, n in counter.most_common(args.top):
            print(f"{100 * n / max(samples, 1):5.1f}%  {frame}")


if __name__ == "__main__":
    main()
