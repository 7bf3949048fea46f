"""`careful-monitor token FILE`: write a random bearer token for `http.auth_token_file` (mode 0600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click

from careful_monitor.cli.common import example, handle_errors


@click.command("token", epilog=example("careful-monitor token /run/secrets/careful-monitor/http-token"))
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a token FILE already holds (every session ends).")
@handle_errors
def token(path: Path, force: bool) -> None:
    """Write a new random token (256 bits, URL-safe) to PATH, readable only by you.

    Keeps an existing non-empty PATH unless --force, so it can run at every start. Point
    `http.auth_token_file` at PATH; clients send `Authorization: Bearer <token>`.
    """
    if path.exists() and path.stat().st_size > 0 and not force:
        click.echo(f"{path} already holds a token (--force replaces it)")
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
        os.chmod(path, 0o600)
    except OSError as exc:
        raise click.BadParameter(f"cannot write {path}: {exc.strerror or exc}", param_hint="PATH") from None
    click.echo(f"wrote a new token to {path} (mode 0600)")
