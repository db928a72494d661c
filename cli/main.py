"""The `jobline` command (DESIGN.md §9): dev, api, worker, migrate, user add/list/token/disable."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

from cli.help_text import READS, reads
from core.config import Settings
from core.version import jobline_version


def _settings() -> Settings:
    return Settings()


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


async def _migrate(settings: Settings) -> None:
    from core.db import Database
    from core.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


def cmd_migrate(args: argparse.Namespace) -> int:
    asyncio.run(_migrate(_settings()))
    print("database is at the latest schema")
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()
    _logging(settings)
    asyncio.run(_migrate(settings))
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from worker import run_worker

    settings = _settings()
    _logging(settings)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a worker is stopped
        asyncio.run(run_worker(settings))
    return 0


class NoDatabase(Exception):
    """The data directory or database a user command would change is not there."""


async def _existing_database(settings: Settings):  # -> core.db.Database
    """The project's database, brought to the latest schema, if it exists; never a new one.

    Only `jobline migrate` and `jobline dev` create a database: a user added to a file made by
    mistake (wrong directory, a typo in JOBLINE_DATA_DIR) would be a user nobody can find.
    """
    from sqlalchemy import inspect, make_url
    from sqlalchemy.exc import SQLAlchemyError

    from core.db import Database
    from core.migrate import upgrade

    if not settings.database_url:
        path = (settings.data_dir / "jobline.db").resolve()
        if not path.is_file():
            raise NoDatabase(
                f"no Jobline database at {path}: set JOBLINE_DATA_DIR (or JOBLINE_DATABASE_URL) "
                "to the project's data directory, or create one with `jobline migrate`"
            )
    db = Database(settings.resolved_database_url)
    shown = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
    try:
        try:
            async with db.engine.connect() as connection:
                tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        except (OSError, SQLAlchemyError) as unreachable:
            raise NoDatabase(f"cannot open the database at {shown}: {unreachable}") from None
        if "users" not in tables:
            raise NoDatabase(
                f"the database at {shown} has no Jobline schema: run `jobline migrate` first"
            )
        await upgrade(db)
    except BaseException:
        await db.dispose()
        raise
    return db


def _run_on_database(settings: Settings, work) -> int:  # work: async (session) -> int
    async def _run() -> int:
        db = await _existing_database(settings)
        try:
            async with db.session() as session:
                return await work(session)
        finally:
            await db.dispose()

    try:
        return asyncio.run(_run())
    except (NoDatabase, ValueError) as refused:
        print(f"jobline: {refused}", file=sys.stderr)
        return 2


def _read_password(args: argparse.Namespace) -> str | None:
    """The new user's password: one line of stdin, or typed twice at a prompt."""
    import getpass

    if args.no_password:
        return None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise ValueError("--password-stdin read no password")
        return password
    if not sys.stdin.isatty():
        raise ValueError(
            "no terminal to ask for a password: pass --password-stdin (or --no-password for a "
            "user of the API only)"
        )
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != first:
        raise ValueError("the two passwords differ")
    return first


def cmd_user_add(args: argparse.Namespace) -> int:
    from api.users.service import add_token, create_user, find_user, hash_password

    async def _add(session) -> int:
        # Asked only once the database is found and the name is free: nothing typed in vain.
        if await find_user(session, args.name) is not None:
            raise ValueError(f"user {args.name!r} already exists")
        password = _read_password(args)
        user = await create_user(
            session, args.name, args.role, args.email, display_name=args.display_name or ""
        )
        user.password_hash = hash_password(password) if password is not None else None
        session.add(user)
        print(await add_token(session, user, label="cli"))
        return 0

    return _run_on_database(_settings(), _add)


def cmd_user_list(args: argparse.Namespace) -> int:
    from api.users.service import users_with_token_counts

    async def _list(session) -> int:
        rows = [("NAME", "ROLE", "EMAIL", "ACTIVE", "PASSWORD", "TOKENS")]
        for user, tokens in await users_with_token_counts(session):
            active = "yes" if user.active else "no"
            password = "yes" if user.password_hash else "no"
            rows.append((user.username, user.role, user.email, active, password, str(tokens)))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
        return 0

    return _run_on_database(_settings(), _list)


async def _named_user(session, name: str):  # -> models.tables.User
    from api.users.service import find_user

    user = await find_user(session, name)
    if user is None:
        raise ValueError(f"no user named {name!r} (see `jobline user list`)")
    return user


def cmd_user_token(args: argparse.Namespace) -> int:
    from api.users.service import replace_tokens

    async def _token(session) -> int:
        user = await _named_user(session, args.name)
        if not user.active:
            raise ValueError(f"user {args.name!r} is disabled")
        print(await replace_tokens(session, user))
        return 0

    return _run_on_database(_settings(), _token)


def cmd_user_disable(args: argparse.Namespace) -> int:
    from api.users.service import disable_user

    async def _disable(session) -> int:
        await disable_user(session, await _named_user(session, args.name))
        print(f"{args.name} is disabled: no sign-in, no tokens, signed out everywhere")
        return 0

    return _run_on_database(_settings(), _disable)


def cmd_dev(args: argparse.Namespace) -> int:
    from cli.dev import DevStack

    return DevStack(
        data_dir=Path(args.data_dir),
        port=args.port,
        temporal_port=args.temporal_port,
        ui_port=args.ui_port,
        demo=not args.no_demo,
    ).run()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="jobline",
        description=__doc__,
        epilog="`jobline COMMAND --help` names the command's options, their defaults and the "
        "JOBLINE_* environment variables it reads.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {jobline_version()}")
    commands = top.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="Temporal dev server + worker + API, with demo data")
    # Read the variable directly: building Settings here would make `--help` need a secret.
    dev.add_argument(
        "--data-dir",
        default=os.environ.get("JOBLINE_DATA_DIR", ".data"),
        help="database, logs and Temporal's state (default: $JOBLINE_DATA_DIR or .data: "
        "%(default)s)",
    )
    dev.add_argument("--port", type=int, default=8000, help="the API's port (default: %(default)s)")
    dev.add_argument(
        "--temporal-port", type=int, default=7233, help="Temporal's port (default: %(default)s)"
    )
    dev.add_argument(
        "--ui-port", type=int, default=8233, help="Temporal UI's port (default: %(default)s)"
    )
    dev.add_argument("--no-demo", action="store_true", help="create no demo users, clients or jobs")
    dev.set_defaults(run=cmd_dev)

    api = commands.add_parser("api", help="the HTTP API (production process)")
    api.add_argument(
        "--host", default="0.0.0.0", help="address to listen on (default: %(default)s)"
    )
    api.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default: %(default)s)"
    )
    api.set_defaults(run=cmd_api)

    commands.add_parser("worker", help="the Temporal worker (production process)").set_defaults(
        run=cmd_worker
    )
    commands.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        run=cmd_migrate
    )

    user = commands.add_parser("user", help="manage users")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser("add", help="create a user and print a bearer token")
    add.add_argument("name")
    add.add_argument(
        "--role", required=True, choices=["admin", "manager", "office", "sales", "technician"]
    )
    add.add_argument("--email")
    add.add_argument(
        "--display-name", help='how customers and colleagues read this person ("Tess Turner")'
    )
    how = add.add_mutually_exclusive_group()
    how.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (one line)"
    )
    how.add_argument(
        "--no-password", action="store_true", help="no web sign-in: a user of the API only"
    )
    add.set_defaults(run=cmd_user_add)
    user_commands.add_parser(
        "list", help="every user: role, email, active, has a password, tokens"
    ).set_defaults(run=cmd_user_list)
    token = user_commands.add_parser(
        "token", help="print a new bearer token for a user; their older tokens stop working"
    )
    token.add_argument("name")
    token.set_defaults(run=cmd_user_token)
    disable = user_commands.add_parser(
        "disable", help="a user can no longer sign in; their tokens and sessions end"
    )
    disable.add_argument("name")
    disable.set_defaults(run=cmd_user_disable)
    # Each command's help ends with the JOBLINE_* variables it reads (cli/help_text.py).
    for name, command in [*commands.choices.items(), *user_commands.choices.items()]:
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        command.epilog = reads(name if name in READS else "user")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
