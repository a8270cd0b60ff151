"""``registry log``: sequence, verify, witness, monitor; and ``registry audit verify`` (alias)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

import click
from sqlalchemy.orm import Session

from registry.cli_support import app_context
from registry.crypto.encryption import DataCipher
from registry.crypto.notes import Checkpoint, NoteError, Verifier, open_checkpoint
from registry.transparency import client, sequencer, service
from registry.transparency.verify import verify_log


@click.group("log")
def log_group() -> None:
    """The transparency log: sequence it, verify it, witness it, monitor it."""


@log_group.command("sequence")
@click.option(
    "--interval",
    type=float,
    default=1.0,
    show_default=True,
    help="Seconds between rounds (at most one checkpoint per round).",
)
@click.option("--once", is_flag=True, help="Integrate everything pending, then stop.")
def sequence(interval: float, once: bool) -> None:
    """Integrate committed entries into the tree and sign checkpoints (one at a time: a lease)."""
    with app_context() as (_app, ctx):
        signer = service.log_signer(ctx.settings, ctx.keystore)
        if once:
            done = sequencer.integrate_all(ctx.db, signer)
            click.echo(f"{done.integrated} leaves integrated; tree size {done.size}")
            return
        stop = threading.Event()

        def _stop(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        click.echo(f"sequencing {signer.name} every {interval} s", err=True)
        sequencer.run(ctx.db, signer, interval=interval, stop=stop)


def _witnessed(folders: tuple[Path, ...], log_key: Verifier) -> list[Checkpoint]:
    found = []
    for folder in folders:
        path = folder / "checkpoint"
        if not path.exists():
            raise click.UsageError(f"{folder} holds no accepted checkpoint")
        try:
            checkpoint, _ = open_checkpoint(path.read_text("utf-8"), log_key)
        except NoteError as exc:
            raise click.UsageError(f"{path}: {exc}") from exc
        found.append(checkpoint)
    return found


@log_group.command("verify")
@click.option(
    "--witness-state",
    "witness_states",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A witness's state folder: the log must hold the checkpoint it accepted.",
)
def verify(witness_states: tuple[Path, ...]) -> None:
    """Recompute the log from the database; check checkpoints, audit events, certificates."""
    with app_context() as (_app, ctx):
        log_key = service.log_signer(ctx.settings, ctx.keystore).verifier
        witnessed = _witnessed(witness_states, log_key)
        with ctx.db.read_session() as session:
            report = verify_log(session, log_key=log_key, witnessed=witnessed)
        for name, check in _CHECKS:
            with ctx.db.read_session() as session:
                problems, checked = check(session, ctx.cipher)
            for problem in problems:
                report.problem(problem)
            report.checked[name] = checked
    counts = ", ".join(f"{n} {what}" for what, n in report.checked.items())
    if report.ok:
        click.echo(f"log intact: {report.size} leaves; checked {counts}")
        return
    click.echo(f"log verification FAILED ({len(report.problems)} problem(s)):", err=True)
    for problem in report.problems:
        click.echo(f"  - {problem}", err=True)
    sys.exit(1)


@log_group.command("witness")
@click.option(
    "--state",
    "state_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder with this witness's key, the pinned log key and its last checkpoint.",
)
@click.option(
    "--name",
    default="witness.local/w1",
    show_default=True,
    help="The witness's key name in cosignatures.",
)
@click.option("--log-key", help="The log's verifier key to pin (default: fetched on first use).")
@click.option("--no-submit", is_flag=True, help="Do not send the cosignature to the registry.")
@click.argument("url")
def witness(state_dir: Path, name: str, log_key: str | None, no_submit: bool, url: str) -> None:
    """Accept the registry's checkpoint only if it extends the last one; cosign it."""
    fetch, post = client.http(url)
    state = client.WitnessState(state_dir)
    vkey = state.signer(name).verifier.vkey()
    try:
        checkpoint, _cosigned = client.witness(
            state, fetch, None if no_submit else post, name=name, log_key=log_key
        )
    except client.Undelivered as exc:
        click.echo(f"accepted and cosigned, but the registry did not take the cosignature: {exc}")
        click.echo("(register this witness there: registry log witness-add <key below>)", err=True)
        click.echo(vkey, err=True)
        return
    except (client.Refused, NoteError) as exc:
        click.echo(f"REFUSED: {exc}", err=True)
        sys.exit(1)
    click.echo(f"accepted and cosigned {checkpoint.origin} at size {checkpoint.size}")
    click.echo(vkey, err=True)


@log_group.command("monitor")
@click.option("--country", required=True, help="The clinics' country to follow (ISO 3166-1).")
@click.option(
    "--state",
    "state_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Remember where this monitor stopped (and refuse a log that went back).",
)
@click.option("--log-key", help="The log's verifier key (default: pinned in --state, or fetched).")
@click.argument("url")
def monitor(country: str, state_dir: Path | None, log_key: str | None, url: str) -> None:
    """Print new issuance per clinic of a country, and every key and accreditation event."""
    fetch, _post = client.http(url)
    state = client.WitnessState(state_dir) if state_dir else None
    try:
        verifier = (
            state.log_key(log_key, fetch)
            if state
            else Verifier.parse(log_key or fetch("key").decode().strip())
        )
        since = state.accepted(verifier) if state else None
        report, _checkpoint, signed = client.monitor(
            fetch, log_key=verifier, country=country.upper(), since=since
        )
    except (client.Refused, NoteError) as exc:
        click.echo(f"REFUSED: {exc}", err=True)
        sys.exit(1)
    click.echo(f"leaves {report.first}..{report.size - 1 if report.size else 0}:")
    for clinic, count in sorted(report.issued.items()):
        click.echo(f"  {clinic}: {count} certificate(s) issued")
    for line in report.events:
        click.echo(f"  {line}")
    if state is not None:
        state.accept(signed)


@log_group.command("witness-add")
@click.argument("vkey")
def witness_add(vkey: str) -> None:
    """Accept cosignatures from a witness (its verifier key, as `registry log witness` prints)."""
    from registry.cli_support import run_service

    with app_context() as (_app, ctx), ctx.db.unit_of_work() as uow:
        name = run_service(lambda: service.add_witness(uow, vkey=vkey))
        uow.commit()
    click.echo(f"witness {name} registered")


@log_group.command("key")
def key() -> None:
    """Print the log's verifier key (what witnesses and monitors pin)."""
    with app_context() as (_app, ctx):
        click.echo(service.log_verifier_key(ctx.settings, ctx.keystore))


# what else `registry log verify` holds to the log, given by the composition root
Check = Callable[[Session, DataCipher], tuple[list[str], int]]
_CHECKS: list[tuple[str, Check]] = []


def register(main: click.Group, *, checks: Sequence[tuple[str, Check]] = ()) -> None:
    """Mount ``registry log`` on the ``registry`` command, with the features' own checks."""
    _CHECKS[:] = list(checks)
    main.add_command(log_group)
