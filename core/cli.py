"""The ``rasoat`` command. Sub-commands come from plugins (core's own first) via ``register_commands``."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from rasoat.core import __version__
from rasoat.core.config import load_settings
from rasoat.core.plugins import build_manager, set_manager
from rasoat.core.problems import Problem


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every plugin's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="rasoat",
        description="rasoat: rà soát, thu thập và báo cáo số liệu phòng, chống ma túy / "
        "survey, collect and report drug-prevention data",
    )
    parser.add_argument("--version", action="version", version=f"rasoat {__version__}",
                        help="in phiên bản / show the version")
    parser.add_argument("--debug", action="store_true",
                        help="hiện chi tiết lỗi (ở đâu cũng được) / show tracebacks (anywhere on the line)")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


EXIT_PROBLEM = 1  # any Problem; argparse's usage errors are 2, Ctrl-C 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: errors are one clear line and a non-zero exit, tracebacks only with --debug."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug is taken wherever it stands (the error line says "rerun with --debug", after any command)
    debug = "--debug" in argv or bool(os.environ.get("RASOAT_DEBUG"))
    argv = [a for a in argv if a != "--debug"]
    if argv[:1] == ["--version"]:  # answered before any plugin or command module loads
        print(f"rasoat {__version__}")
        return 0
    try:
        pm = build_manager(load_settings(_data_arg(argv)).disabled_plugins)
        set_manager(pm)
        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        pm.hook.register_commands(subparsers=sub)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except Problem as exc:  # the CLI's rendering of every error a user can act on: one "vi / en" line
        if debug:
            traceback.print_exc()
        print(f"Lỗi / Error: {exc.message}", file=sys.stderr)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # an unexpected failure still gets one line unless --debug
        if debug:
            traceback.print_exc()
        print(f"Lỗi / Error: {type(exc).__name__}: {exc} (chạy lại với --debug / rerun with --debug)",
              file=sys.stderr)
        return 1


def _data_arg(argv: list[str]) -> str | None:
    """``--data DIR`` is read early: the data directory's rasoat.toml may disable plugins."""
    for i, arg in enumerate(argv):
        if arg == "--data" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--data="):
            return arg.split("=", 1)[1]
    return None


if __name__ == "__main__":
    raise SystemExit(main())
