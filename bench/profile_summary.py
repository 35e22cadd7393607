"""Summarise a profile written by `foundation.py --profile DIR` or `--cprofile DIR`.

    python bench/profile_summary.py DIR/profile-a.txt [--top 25] [--focus TEXT] [--exclude TEXT]
    python bench/profile_summary.py DIR/cprofile-b.prof [--per 20000] [--top 25]

py-spy raw files (collapsed stacks): the functions with the most samples on CPU ("self") and the
ones most often on the stack ("total", each function counted once per sample). --focus keeps only
samples whose stack contains TEXT (e.g. `feed_update`), --exclude drops those that contain it.

cProfile files: time by package (sqlalchemy, aiogram, aiohttp, pydantic, our code …) and the
functions with the most own time; --per divides by the number of updates for per-update figures.
cProfile roughly doubles the cost of Python calls, so read shares, not absolute times.
"""

from __future__ import annotations

import argparse
from collections import Counter


def collapsed(args: argparse.Namespace) -> None:
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


def package(filename: str, name: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/")[-1].split("/")[0]
    for ours in ("bot/", "handlers/", "models/"):
        if f"/{ours}" in filename:
            return "ours: " + ours.rstrip("/")
    if filename.startswith("~"):
        return f"builtin {name}"[:48]
    return "stdlib " + filename.rsplit("/", 1)[-1]


def cprofile(args: argparse.Namespace) -> None:
    import pstats

    stats = pstats.Stats(args.path)
    per = args.per or 1
    unit = "per update" if args.per else "total"
    by_package: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    functions = []
    for (filename, line, name), (_cc, ncalls, own, _cum, _callers) in stats.stats.items():
        key = package(filename, name)
        by_package[key] += own
        calls[key] += ncalls
        functions.append((own, ncalls, f"{filename.split('site-packages/')[-1]}:{line} {name}"))
    grand = sum(by_package.values()) or 1
    print(f"{grand:.2f} s of own time in all; shown {unit}")
    print("\n-- by package --")
    for key, own in by_package.most_common(args.top):
        print(f"{100 * own / grand:5.1f}%  {1e6 * own / per:9.0f} us  {calls[key] / per:8.1f} calls  {key}")
    print("\n-- functions, own time --")
    for own, ncalls, where in sorted(functions, reverse=True)[:args.top]:
        print(f"{100 * own / grand:5.1f}%  {1e6 * own / per:9.0f} us  {ncalls / per:8.2f} calls  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--focus", help="py-spy: only samples whose stack contains this text")
    parser.add_argument("--exclude", action="append", default=[], help="py-spy: drop samples whose stack contains this")
    parser.add_argument("--per", type=int, help="cProfile: divide by this many updates")
    args = parser.parse_args()
    if args.path.endswith(".prof"):
        cprofile(args)
    else:
        collapsed(args)


if __name__ == "__main__":
    main()
