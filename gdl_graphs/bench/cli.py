"""The ``gdl-bench`` command line."""

from __future__ import annotations

import argparse
import sys

import gdl_graphs


def _cmd_verify(args: argparse.Namespace) -> int:
    from gdl_graphs.bench.verify import verify

    rows = verify(seed=args.seed)
    width = max(len(name) for name, *_ in rows)
    print(f"{'layer':<{width}}  {'symmetry group':<24}  max error  status")
    for name, group, error, status in rows:
        shown = f"{error:.2e}" if error is not None else "-"
        print(f"{name:<{width}}  {group:<24}  {shown:>9}  {status}")
    failed = sum(status != "ok" for *_, status in rows)
    print(f"{len(rows) - failed} of {len(rows)} layers certified")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gdl-bench", description="Compare and certify graph neural networks.")
    parser.add_argument("--version", action="version", version=f"gdl_graphs {gdl_graphs.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    verify = commands.add_parser("verify", help="check every registered layer's symmetry with gdl_graphs.testing",
                                 description="Run every registered layer through gdl_graphs.testing and print its "
                                             "symmetry group and measured max equivariance error.")
    verify.add_argument("--seed", type=int, default=0, help="seed of the random inputs and group elements")
    verify.set_defaults(handler=_cmd_verify)
    return parser




def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with code 2 and a one-line message on bad arguments
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
