"""``rasoat init [DIR]``: make a data directory (an empty embedded store, or a PostgreSQL store's files
folder with its schema), so that every other command can refuse a folder that is not one."""

from __future__ import annotations

import argparse
from typing import Any

from rasoat.core import hookimpl
from rasoat.core.cli_lines import say
from rasoat.core.commands.common import add_data_option, command_store
from rasoat.core.config import load_settings

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading the store and the protection keys for it would slow every command
# (benchmarks/cli_startup.py).


def cmd_init(args: argparse.Namespace) -> int:
    from rasoat.core.datadir import is_data_dir

    if args.dir:
        args.data = args.dir
    path = load_settings(args.data).data_dir
    existed = is_data_dir(path)
    from rasoat.core.protection import keyring

    with command_store(args, create=True) as store:
        keyring(store)  # the key-encryption key, made outside the data directory (a warning says where)
    if existed:
        say("init.existed", path=path)
    else:
        say("init.created", path=path)
    return 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "init", help="tạo thư mục dữ liệu mới / create a data directory",
        description="Tạo kho dữ liệu trống trong DIR (thư mục mới hoặc trống) / Create an empty store in "
        "DIR (a new or empty folder). 'rasoat serve' does this on first start.",
    )
    p.add_argument("dir", nargs="?", metavar="DIR",
                   help="thư mục dữ liệu / data directory (default --data, $RASOAT_DATA or ./rasoat-data)")
    add_data_option(p)
    p.set_defaults(func=cmd_init)

