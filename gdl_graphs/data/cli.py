"""``gdl-bench data list`` and ``gdl-bench data prepare NAME [--from DIR]``.

:func:`add_data_commands` adds the ``data`` command to the harness's argparse sub-parsers; each sub-command sets
``handler`` (called as ``args.handler(args)``, returning the exit code), as the other ``gdl-bench`` commands.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from gdl_graphs.data.checksums import KNOWN_SHA256, ChecksumError, verify_files
from gdl_graphs.data.registry import get_spec, list_benchmarks
from gdl_graphs.data.root import data_root


def add_data_commands(subparsers) -> argparse.ArgumentParser:
    """Add ``data list`` / ``data prepare`` to ``subparsers`` (from ``ArgumentParser.add_subparsers()``)."""
    data = subparsers.add_parser("data", help="list, download or stage benchmark datasets")
    commands = data.add_subparsers(dest="data_command", required=True)
    # SUPPRESS: a --data-root given to the top-level parser is not overwritten by this one's default.
    root_help = "data root (default: $GDL_DATA, else the checkout's datasets/)"

    listing = commands.add_parser("list", help="registered datasets and whether their raw files are present")
    listing.add_argument("--family", choices=sorted({s.family for s in list_benchmarks()}))
    listing.add_argument("--data-root", default=argparse.SUPPRESS, help=root_help)
    listing.set_defaults(handler=cmd_list)

    prepare = commands.add_parser("prepare", help="download (or copy from a mirror), verify and process a dataset")
    prepare.add_argument("name", help="dataset name, as in `gdl-bench data list`")
    prepare.add_argument("--from", dest="mirror", type=Path, default=None,
                         help="a local mirror laid out like the data root (e.g. a cluster share); copy from it "
                              "instead of downloading")
    prepare.add_argument("--no-verify", action="store_true", help="skip the SHA-256 checks of known raw files")
    prepare.add_argument("--data-root", default=argparse.SUPPRESS, help=root_help)
    prepare.set_defaults(handler=cmd_prepare)
    return data


def raw_status(root: Path, spec) -> str:
    """``present (n files, k verified)``, ``incomplete (missing ...)``, ``absent``, where built-in data come from, or
    ``CHECKSUM MISMATCH ...`` for a dataset."""
    if not spec.dirs:
        return spec.provided
    files = [p for d in spec.dirs if (root / d).is_dir() for p in (root / d).rglob("*") if p.is_file()]
    raw = [p for p in files if "processed" not in p.relative_to(root).parts]
    if not raw:
        return "absent"
    try:
        verified = verify_files(root, [p.relative_to(root).as_posix() for p in raw])
    except ChecksumError as err:
        return f"CHECKSUM MISMATCH: {str(err).split(':')[0]}"
    missing = [r for r in spec.required if not (root / r).is_file()]
    if missing:
        return f"incomplete (missing {', '.join(missing)}; {len(verified)} files verified)"
    return f"present ({len(raw)} files, {len(verified)} verified)"


def cmd_list(args) -> int:
    root = data_root(getattr(args, "data_root", None))
    print(f"data root: {root}")
    rows = [(s.name, s.family, s.task, s.metric, raw_status(root, s))
            for s in list_benchmarks(getattr(args, "family", None))]
    widths = [max(len(r[i]) for r in rows + [("name", "family", "task", "metric", "raw files")]) for i in range(4)]
    header = ("name", "family", "task", "metric", "raw files")
    for row in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
    return 0


def copy_from_mirror(mirror: Path, root: Path, dirs: tuple[str, ...]) -> list[str]:
    """Copy the raw files of ``dirs`` from ``mirror`` to ``root`` (skipping ``processed/`` folders); returns the
    copied paths relative to the root. Files are written with default permissions, so a read-only mirror gives a
    writable copy."""
    mirror = Path(mirror).expanduser().resolve()
    if not mirror.is_dir():
        raise FileNotFoundError(f"--from {mirror}: no such directory")
    copied = []
    for d in dirs:
        source = mirror / d
        if not source.is_dir():
            continue
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(mirror)
            if path.is_file() and "processed" not in rel.parts:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, root / rel)
                copied.append(rel.as_posix())
    if not copied:
        raise FileNotFoundError(f"--from {mirror}: none of {list(dirs)} holds files (the mirror must be laid out like "
                                f"the data root)")
    return copied


def cmd_prepare(args) -> int:
    root = data_root(getattr(args, "data_root", None))
    try:
        spec = get_spec(args.name)
        if args.mirror is not None:
            if not spec.dirs:
                raise ValueError(f"{spec.name} has no raw files to copy ({spec.provided})")
            copied = copy_from_mirror(args.mirror, root, spec.dirs)
            print(f"copied {len(copied)} files from {args.mirror} into {root}")
            if not args.no_verify:
                verified = verify_files(root, copied)
                unknown = [c for c in copied if c not in KNOWN_SHA256]
                print(f"verified {len(verified)} files against known SHA-256"
                      + (f"; {len(unknown)} without a known hash" if unknown else ""))
        options = {"verify": False} if args.no_verify and "verify" in spec.options() else {}
        bench = spec.load(root, **options)
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    sizes = "/".join(map(str, bench.split_sizes()))
    print(f"{bench.name}: {bench.task}, metric {bench.metric}, train/val/test {sizes}, "
          f"{bench.num_features} features, {bench.num_targets} targets")
    return 0
