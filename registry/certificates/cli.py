"""The `rulesets` commands of the `registry` command line: reevaluate, worker, status.

``register(main)`` mounts them; ``registry.cli`` is imported lazily, since it mounts these at
its end.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from registry.certificates.reevaluation import DEFAULT_BATCH
from registry.db import UnitOfWork

__all__ = ["register"]


@click.group()
def rulesets() -> None:
    """Destination rulesets: judging issued certificates again when a version applies to them."""


def _work_off(uow_factory: Callable[[], UnitOfWork], batch: int, stop: Callable[[], bool]) -> int:
    """Run batches until no job may run (or ``stop``); a progress line per batch."""
    from registry.certificates import service
    from registry.errors import Conflict

    batches = 0
    while not stop():
        with uow_factory() as uow:
            try:
                progress = service.reevaluate_batch(uow, batch=batch)
            except Conflict as exc:  # another worker has this job's batch: leave it to it
                click.echo(f"rulesets: {exc.message}", err=True)
                return batches
            if progress is None:
                return batches
            uow.commit()
        batches += 1
        click.echo(progress.describe())
        for certificate_id in progress.revoked_now:
            click.echo(f"  revoked {certificate_id}")
    return batches


@rulesets.command("reevaluate")
@click.option(
    "--batch",
    type=click.IntRange(min=1, max=10_000),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Certificates judged per transaction",
)
def reevaluate_command(batch: int) -> None:
    """Judge certificates already issued by every version that applies to them, now.

    What the rulesets worker does in the background, in the foreground: queues a job for any
    such version without one, then works off every job whose version is in force, printing
    progress. Idempotent and safe to interrupt: a job resumes after its last whole batch.
    """
    from registry.certificates import service
    from registry.cli_support import app_context

    with app_context() as (_app, ctx):
        with ctx.db.unit_of_work() as uow:
            queued = service.queue_reevaluations(uow)
            uow.commit()
        if queued:
            click.echo(f"re-evaluation queued: {', '.join(queued)}")
        _work_off(ctx.db.unit_of_work, batch, lambda: False)
        with ctx.db.reading() as uow:
            waiting = [j for j in service.reevaluation_jobs(uow) if j.state != "done"]
            for job in waiting:
                click.echo(
                    f"{job.destination}.v{job.version}: waits until it is in force on "
                    f"{job.not_before.isoformat()}"
                )
    if not waiting:
        click.echo("certificates: every re-evaluation done")


@rulesets.command("worker")
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=60,
    show_default=True,
    help="Seconds between looks for queued re-evaluations",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1, max=10_000),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Certificates judged per transaction",
)
@click.option("--once", is_flag=True, help="One pass, then exit (cron, tests)")
def worker_command(interval: float, batch: int, once: bool) -> None:
    """Judge certificates already issued in the background whenever a new version applies.

    `registry init` only queues the work when it publishes such a version; this process works
    it off in batches, one transaction each, revoking the certificates the version no longer
    accepts (reason ruleset-changed). Stopped anywhere, a job resumes after its last whole
    batch. Run one (a second one finds the batches claimed); it stops cleanly on SIGTERM.
    """
    import signal
    import threading

    from registry.cli_support import app_context

    stop = threading.Event()
    if not once:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        click.echo(f"rulesets worker: every {interval:g} s, {batch} per batch", err=True)
    with app_context() as (_app, ctx):
        while not stop.is_set():
            _work_off(ctx.db.unit_of_work, batch, stop.is_set)
            if once:
                break
            stop.wait(interval)


@rulesets.command("status")
def status_command() -> None:
    """Every re-evaluation of issued certificates: state and progress."""
    from registry.certificates import service
    from registry.cli_support import app_context

    with app_context() as (_app, ctx), ctx.db.reading() as uow:
        jobs = service.reevaluation_jobs(uow)
        for job in jobs:
            click.echo(
                f"{job.destination}.v{job.version}: {job.state}, {job.judged}/{job.total} "
                f"judged, {job.revoked} revoked (not before {job.not_before.isoformat()})"
            )
        if not jobs:
            click.echo("no version applies to certificates already issued")


def register(main: click.Group) -> None:
    """Mount the rulesets commands on the `registry` command."""
    main.add_command(rulesets)
