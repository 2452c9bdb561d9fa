"""Ctrl-C and ``kill``: stop cleanly, with one line and the shell's exit codes.

Python turns Ctrl-C (SIGINT) into ``KeyboardInterrupt``, but SIGTERM (``kill``, a batch system
stopping a job) ends the process at once, skipping every ``finally`` — including the one in
`files.atomic_write` that removes its temporary file. While a command runs, SIGTERM is
therefore turned into the `Terminated` exception, which unwinds like ``KeyboardInterrupt``.
Either way the command prints one line and exits 128 + the signal number (130 for Ctrl-C,
143 for SIGTERM), as shells do.
"""
from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click

__all__ = ["Terminated", "InterruptibleGroup"]


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM during a command.

    A BaseException, like KeyboardInterrupt, so that ``except Exception`` does not swallow it.
    """


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


class InterruptibleGroup(click.Group):
    """A click group whose commands end with one line and exit 130 on Ctrl-C, 143 on SIGTERM,
    after every ``finally`` (temporary files removed, old files intact) has run."""

    def invoke(self, ctx: click.Context) -> Any:
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            start = "\n" if sys.stderr.isatty() else ""  # end the line the terminal shows ^C on
            click.echo(f"{start}Interrupted (Ctrl-C); nothing more was written.", err=True)
            ctx.exit(128 + signal.SIGINT)
        except Terminated:
            click.echo("Terminated (SIGTERM); nothing more was written.", err=True)
            ctx.exit(128 + signal.SIGTERM)
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous)
