"""The `jobline` command (DESIGN.md §9): dev, api, worker, migrate, user add."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

from core.config import Settings


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


def cmd_user_add(args: argparse.Namespace) -> int:
    from api.users.service import add_token, create_user
    from core.db import Database

    settings = _settings()

    async def _add() -> str:
        await _migrate(settings)
        db = Database(settings.resolved_database_url)
        try:
            async with db.session() as session:
                user = await create_user(session, args.name, args.role, args.email)
                return await add_token(session, user, label="cli")
        finally:
            await db.dispose()

    try:
        token = asyncio.run(_add())
    except ValueError as refused:
        print(f"jobline: {refused}", file=sys.stderr)
        return 2
    print(token)
    return 0


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
    top = argparse.ArgumentParser(prog="jobline", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="Temporal dev server + worker + API, with demo data")
    # Read the variable directly: building Settings here would make `--help` need a secret.
    dev.add_argument("--data-dir", default=os.environ.get("JOBLINE_DATA_DIR", ".data"))
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--temporal-port", type=int, default=7233)
    dev.add_argument("--ui-port", type=int, default=8233)
    dev.add_argument("--no-demo", action="store_true", help="create no demo users, clients or jobs")
    dev.set_defaults(run=cmd_dev)

    api = commands.add_parser("api", help="the HTTP API (production process)")
    api.add_argument("--host", default="0.0.0.0")
    api.add_argument("--port", type=int, default=8000)
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
    add.set_defaults(run=cmd_user_add)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
