"""The `surveillance` commands of the `registry` command line: export, rebuild, protect, worker.

``register(main)`` mounts them; ``registry.cli`` is imported lazily, since it mounts these at
its end.
"""

from __future__ import annotations

from pathlib import Path

import click

from registry.surveillance.cube import FLAT_DIMENSIONS, MEASURES
from registry.surveillance.disclosure import DEFAULT_K, MIN_K
from registry.surveillance.service import FORMATS, SCOPES

__all__ = ["register"]


def _split(text: str | None, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip()) if text else default


@click.group()
def surveillance() -> None:
    """Anonymised surveillance counts: protected extracts, and rebuilding the counts."""


@surveillance.command("export")
@click.option(
    "--granularity",
    type=click.Choice(["month", "quarter", "year"]),
    default="quarter",
    show_default=True,
)
@click.option("--from", "first", required=True, help="First period: 2026-03, 2026-Q1 or 2026")
@click.option("--to", "last", help="Last period (default: the first)")
@click.option("--group-by", help=f"Comma list of {', '.join(FLAT_DIMENSIONS)}")
@click.option("--measures", help=f"Comma list of {', '.join(MEASURES)} (default: all nine)")
@click.option("--k", type=click.IntRange(min=MIN_K), default=DEFAULT_K, show_default=True)
@click.option("--rounding", type=click.IntRange(min=2), help="Round published counts to a base")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="csv")
@click.option("--country", help="Restrict to one country (ISO alpha-2) as origin or destination")
@click.option("--scope", type=click.Choice(SCOPES), default="origin", show_default=True)
@click.option("--org-unit", help="DHIS2 organisation unit code (dhis2, adx)")
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here, with the detached JWS beside it as <file>.jws (default: standard output)",
)
def export(
    granularity: str,
    first: str,
    last: str | None,
    group_by: str | None,
    measures: str | None,
    k: int,
    rounding: int | None,
    fmt: str,
    country: str | None,
    scope: str,
    org_unit: str | None,
    out: Path | None,
) -> None:
    """Write a protected, signed extract (the same one the API serves)."""
    from registry.cli_support import app_context, operator, run_service
    from registry.surveillance.service import ExtractQuery, build_extract

    query = ExtractQuery(
        granularity=granularity,
        first=first,
        last=last or first,
        grouping=_split(group_by),
        measures=_split(measures, MEASURES),
        k=k,
        rounding=rounding,
        format=fmt,
        scope=scope,
        country=country,
        org_unit=org_unit,
    )
    with app_context() as (_app, ctx), ctx.db.unit_of_work() as uow:
        release = run_service(lambda: build_extract(uow, principal=operator(), query=query))
        uow.commit()
    for warning in release.warnings:
        click.echo(f"warning: {warning}", err=True)
    if out is None:
        click.echo(release.body.decode(), nl=False)
        return
    out.write_bytes(release.body)
    signature = out.with_name(out.name + ".jws")
    signature.write_text(release.signature + "\n")
    click.echo(f"extract written to {out} (data version {release.version})", err=True)
    click.echo(f"detached JWS written to {signature}", err=True)


@surveillance.command("dhis2-metadata")
@click.option(
    "--org-unit-id",
    help="UID of the ministry's organisation unit in its DHIS2: the data sets are assigned to it",
)
@click.option(
    "--country",
    "countries",
    multiple=True,
    help="An origin or destination to describe beyond those counted (repeatable, ISO alpha-2)",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here (default: standard output)",
)
def dhis2_metadata_command(
    org_unit_id: str | None, countries: tuple[str, ...], out: Path | None
) -> None:
    """DHIS2 metadata (POST /api/metadata) for the values of every dhis2 and adx extract:
    data sets, data elements, categories, options, combinations; UIDs derived from codes."""
    import json

    from registry.cli_support import app_context, run_service
    from registry.surveillance.service import dhis2_metadata

    with app_context() as (_app, ctx), ctx.db.reading() as uow:
        document = run_service(
            lambda: dhis2_metadata(uow.session, org_unit_id=org_unit_id, countries=countries)
        )
    text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text)
    sizes = ", ".join(f"{len(v)} {k}" for k, v in document.items())
    click.echo(f"DHIS2 metadata written to {out}: {sizes}", err=True)


@surveillance.command("rebuild")
def rebuild_command() -> None:
    """Recompute every count from the stored examinations, in one transaction."""
    from registry.cli_support import app_context
    from registry.surveillance.rebuild import rebuild

    def progress(done: int, total: int) -> None:
        click.echo(f"  {done}/{total} examinations", err=True)

    with app_context() as (_app, ctx), ctx.db.unit_of_work() as uow:
        result = rebuild(uow, progress=progress)
        uow.commit()
    click.echo(
        f"surveillance counts rebuilt: {result.examinations} examinations "
        f"in {result.microcells} microcells"
    )


@surveillance.command("protect")
@click.option("--year", "years", type=int, multiple=True, help="Year (default: the last two)")
@click.option("--k", type=click.IntRange(min=MIN_K), default=DEFAULT_K, show_default=True)
def protect_command(years: tuple[int, ...], k: int) -> None:
    """Compute and store the suppression pattern of the closed months now (for example from cron
    after a month closes), so no ministry waits for it.

    Like the worker, it reads and computes with no write transaction open and stores each
    pattern in a short write, so requests keep writing meanwhile.
    """
    from registry.cli_support import app_context
    from registry.db import utcnow
    from registry.surveillance.service import closed_through, protect_year

    now = utcnow()
    last = closed_through(now).year
    with app_context() as (_app, ctx):
        for year in years or (last - 1, last):
            done = protect_year(ctx.db, year=year, k=k, now=now)
            click.echo(
                f"{year}: pattern for data version {done.version} at k={k} ({done.seconds:.1f} s)"
            )


@surveillance.command("worker")
@click.option(
    "--k",
    "ks",
    type=click.IntRange(min=MIN_K),
    multiple=True,
    default=(DEFAULT_K,),
    show_default=True,
    help="Thresholds kept ready (any other k is computed once a request asks for it)",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=30,
    show_default=True,
    help="Seconds between looks for new data and requested patterns",
)
@click.option("--once", is_flag=True, help="One pass, then exit (cron, tests)")
def worker_command(ks: tuple[int, ...], interval: float, once: bool) -> None:
    """Compute suppression patterns in the background whenever the data changes.

    Web requests never compute a pattern: an extract asked before its pattern exists answers
    202 with Retry-After. This process computes the patterns of the current data versions of
    last year and this year, and every pattern a request asked for, then stores them for every
    web worker. Run exactly one (it stops cleanly on SIGTERM).
    """
    import signal
    import threading

    from registry.cli_support import app_context
    from registry.db import utcnow
    from registry.surveillance.service import protect_outstanding

    stop = threading.Event()
    if not once:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        click.echo(f"surveillance worker: every {interval:g} s, k = {sorted(set(ks))}", err=True)
    with app_context() as (_app, ctx):
        while not stop.is_set():
            for done in protect_outstanding(ctx.db, now=utcnow(), ks=sorted(set(ks))):
                click.echo(
                    f"{done.year}: pattern for data version {done.version} at k={done.k} "
                    f"({done.seconds:.1f} s)"
                )
            if once:
                break
            stop.wait(interval)


def register(main: click.Group) -> None:
    """Mount the surveillance commands on the `registry` command."""
    main.add_command(surveillance)
