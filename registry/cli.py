"""The ``registry`` command: thin wrappers over the services."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from registry.cli_support import app_context, operator, parse_when, run_service


@click.group()
def main() -> None:
    """Cross-border medical examination registry."""


# -- setup -----------------------------------------------------------------------------------
@main.command()
def init() -> None:
    """Create or upgrade the database schema, then create the registry's keys if absent."""
    from registry.schema import upgrade

    with app_context(create_keys=True) as (_app, ctx):
        upgrade(ctx.settings.database_url)
        click.echo(f"database ready: {ctx.db.engine.url.render_as_string(hide_password=True)}")
        click.echo(f"keys in {ctx.settings.keys_dir}: {ctx.keystore.describe_created()}")
        from registry.certificates.service import pending_reevaluations, sync_rulesets
        from registry.crypto.rotation import record_key_files

        with ctx.db.unit_of_work() as uow:
            recorded = record_key_files(uow, actor=operator())
            uow.commit()
        click.echo(
            "registry keys: "
            + (
                ", ".join(f"{r.purpose} {r.kid} {r.status}" for r in recorded) + " recorded"
                if recorded
                else "all recorded"
            )
        )

        with ctx.db.unit_of_work() as uow:
            added = sync_rulesets(uow, profiles_dir=ctx.settings.profiles_dir)
            pending = pending_reevaluations(uow)
            uow.commit()
        click.echo("rulesets: " + (", ".join(added) + " published" if added else "up to date"))
        if pending:
            click.echo(
                f"certificates issued earlier wait for re-evaluation by {', '.join(pending)} "
                "(the rulesets worker does it; or run: registry rulesets reevaluate)"
            )


@main.command()
def demo() -> None:
    """Load demo clinics, keys and clients (idempotent)."""
    from registry.demo import load_demo

    with app_context() as (_app, ctx):
        for line in run_service(lambda: load_demo(ctx, principal=operator())):
            click.echo(line)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option(
    "--sequencer/--no-sequencer",
    default=False,
    help="Also sequence the transparency log in this process (one host, `make run`); "
    "elsewhere `registry log sequence` runs on its own.",
)
def serve(host: str, port: int, workers: int, sequencer: bool) -> None:
    """Serve the registry with gunicorn."""
    from gunicorn.app.wsgiapp import WSGIApplication

    if sequencer:
        _sequence_in_background()

    sys.argv = [
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--access-logfile",
        "-",
        "registry.wsgi:app",
    ]
    WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").run()


def _sequence_in_background() -> None:
    """The log's sequencer on a daemon thread of this process, with an app of its own."""
    import threading

    from registry import create_app
    from registry.transparency import sequencer, service

    app = create_app()
    ctx = app.extensions["registry"]
    signer = service.log_signer(ctx.settings, ctx.keystore)
    stop = threading.Event()
    thread = threading.Thread(
        target=sequencer.run,
        args=(ctx.db, signer),
        kwargs={"interval": 1.0, "stop": stop},
        name="log-sequencer",
        daemon=True,
    )
    thread.start()


# -- clinics ---------------------------------------------------------------------------------
@main.group()
def clinic() -> None:
    """Accredit, suspend, withdraw and list clinics; manage their keys."""


@clinic.command("add")
@click.option("--id", "clinic_id", required=True, help="Registry id, e.g. TJ-DUS-0007")
@click.option("--name", required=True)
@click.option("--country", required=True, help="ISO 3166-1 alpha-2")
@click.option("--city")
@click.option(
    "--purpose",
    "purposes",
    multiple=True,
    required=True,
    type=click.Choice(["pre-departure", "return", "in-host", "periodic"]),
)
@click.option("--from", "accredited_from", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--until", "accredited_until", type=click.DateTime(["%Y-%m-%d"]))
@click.option("--quota", "annual_quota", type=int)
def clinic_add(
    clinic_id: str,
    name: str,
    country: str,
    city: str | None,
    purposes: tuple[str],
    accredited_from: datetime,
    accredited_until: datetime | None,
    annual_quota: int | None,
) -> None:
    """Accredit a clinic."""
    from registry.accreditation import service

    with app_context() as (_app, ctx), ctx.db.unit_of_work() as uow:
        added = run_service(
            lambda: service.add_clinic(
                uow,
                principal=operator(),
                clinic_id=clinic_id,
                name=name,
                country=country,
                city=city,
                purposes=purposes,
                accredited_from=accredited_from.date(),
                accredited_until=accredited_until.date() if accredited_until else None,
                annual_quota=annual_quota,
            )
        )
        uow.commit()
        click.echo(f"accredited {added.id} ({added.name}, {added.country})")


def _status_command(status: str, verb: str) -> Callable[..., None]:
    @click.argument("clinic_id")
    @click.option("--reason", required=True)
    @click.option("--at", "effective_at", help="When it took effect (ISO 8601; default now)")
    def command(clinic_id: str, reason: str, effective_at: str | None) -> None:
        from registry.accreditation import service

        with app_context() as (_app, ctx), ctx.db.unit_of_work() as uow:
            run_service(
                lambda: service.change_clinic_status(
                    uow,
                    principal=operator(),
                    clinic_id=clinic_id,
                    status=status,
                    reason=reason,
                    effective_at=parse_when(effective_at),
                )
            )
            uow.commit()
            click.echo(f"{clinic_id} {verb}")

    command.__doc__ = f"Mark a clinic {status}."
    return command


clinic.command("suspend")(_status_command("suspended", "suspended"))
clinic.command("withdraw")(_status_command("withdrawn", "withdrawn"))
clinic.command("reinstate")(_status_command("active", "reinstated"))


@clinic.command("list")
@click.option("--country")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def clinic_list(country: str | None, as_json: bool) -> None:
    """List clinics with their status."""
    from registry.accreditation import service

    with app_context() as (_app, ctx), ctx.db.reading() as uow:
        clinics = service.list_clinics(uow, country=country)
        if as_json:
            click.echo(
                json.dumps(
                    [
                        {
                            "id": c.id,
                            "name": c.name,
                            "country": c.country,
                            "status": c.status,
                            "keys": [k.kid for k in c.keys],
                        }
                        for c in clinics
                    ],
                    indent=2,
                )
            )
            return
        for c in clinics:
            until = c.accredited_until.isoformat() if c.accredited_until else "open"
            click.echo(
                f"{c.id:<13} {c.status:<10} {c.accredited_from}..{until:<10} "
                f"{len(c.keys)} key(s)  {c.name}"
            )


@clinic.group("key")
def clinic_key() -> None:
    """Generate, register and compromise clinic signing keys."""


@clinic_key.command("generate")
@click.argument("clinic_id")
@click.option(
    "--custody",
    type=click.Choice(["clinic-held", "custodial"]),
    default="clinic-held",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Where to write a clinic-held private key (default keys/clinics/<kid>.jwk.json)",
)
def key_generate(clinic_id: str, custody: str, out: Path | None) -> None:
    """Generate a key: clinic-held ones go to a 0600 file, custodial ones are sealed in the DB."""
    from registry.accreditation import service
    from registry.crypto.keys import write_private_file

    with app_context() as (_app, ctx), ctx.db.unit_of_work() as uow:
        key, secret = run_service(
            lambda: service.generate_clinic_key(
                uow,
                principal=operator(),
                clinic_id=clinic_id,
                custody=custody,
            )
        )
        if secret is not None:
            target = out or ctx.settings.keys_dir / "clinics" / f"{clinic_id}-{key.kid}.jwk.json"
            write_private_file(target, json.dumps(secret, indent=2).encode())
            click.echo(f"private key written to {target} (hand it to the clinic, then delete it)")
        uow.commit()
        click.echo(f"{custody} key {key.kid} registered for {clinic_id}")


@clinic.command("keygen")
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (a new 0600 file; kept at the clinic)",
)
@click.option(
    "--client-id",
    help="The API client id the accreditor gave, written into the key file for signing in",
)
def clinic_keygen(out: Path, client_id: str | None) -> None:
    """Make a clinic key pair on this machine (no server): private JWK to a file, public printed.

    Send the printed public key to the accreditor, who registers it as the clinic's signing key
    (POST /api/v1/clinics/<id>/keys) or API client (POST /api/v1/clinics/<id>/clients).
    """
    from registry.crypto.keys import generate_key, private_jwk, thumbprint, write_private_file

    if out.exists():
        raise click.ClickException(f"{out} exists; a key file is never overwritten")
    secret: dict[str, str] = private_jwk(generate_key())
    secret["kid"] = thumbprint(secret)
    if client_id:
        secret["client_id"] = client_id
    write_private_file(out, json.dumps(secret, indent=2).encode())
    public = {k: v for k, v in secret.items() if k in ("kty", "crv", "x", "y", "kid")}
    click.echo(f"private key written to {out}; keep it at the clinic", err=True)
    click.echo(json.dumps(public, indent=2))


@clinic_key.command("add")
@click.argument("clinic_id")
@click.argument("jwk_file", type=click.Path(exists=True, path_type=Path))
def key_add(clinic_id: str, jwk_file: Path) -> None:
    """Register a clinic-held public key from a JWK file."""
    from registry.accreditation import service
    from registry.crypto.keys import read_jwk_file

    with app_context() as (_app, ctx), ctx.db.unit_of_work() as uow:
        jwk = read_jwk_file(jwk_file)
        key = run_service(
            lambda: service.register_key(
                uow,
                principal=operator(),
                clinic_id=clinic_id,
                jwk=jwk,
            )
        )
        uow.commit()
        click.echo(f"clinic-held key {key.kid} registered for {clinic_id}")


@clinic_key.command("compromise")
@click.argument("kid")
@click.option("--at", "effective_at", help="When the key was compromised (ISO 8601; default now)")
@click.option("--reason", required=True)
def key_compromise(kid: str, effective_at: str | None, reason: str) -> None:
    """Mark a clinic key compromised as of a time."""
    from registry.accreditation import service

    with app_context() as (_app, ctx), ctx.db.unit_of_work() as uow:
        run_service(
            lambda: service.change_key_status(
                uow,
                principal=operator(),
                kid=kid,
                status="compromised",
                reason=reason,
                effective_at=parse_when(effective_at),
            )
        )
        uow.commit()
        click.echo(f"key {kid} marked compromised")


@clinic_key.command("retire")
@click.argument("kid")
@click.option("--reason", default="rotated", show_default=True)
def key_retire(kid: str, reason: str) -> None:
    """Retire a clinic key (it no longer signs; earlier signatures stay valid)."""
    from registry.accreditation import service

    with app_context() as (_app, ctx), ctx.db.unit_of_work() as uow:
        run_service(
            lambda: service.change_key_status(
                uow,
                principal=operator(),
                kid=kid,
                status="retired",
                reason=reason,
            )
        )
        uow.commit()
        click.echo(f"key {kid} retired")


# -- clients ---------------------------------------------------------------------------------
@main.group()
def client() -> None:
    """API clients (OAuth client credentials with private_key_jwt)."""


@client.command("add")
@click.option("--name", required=True)
@click.option(
    "--role",
    required=True,
    type=click.Choice(["clinic", "employer", "authority", "ministry", "accreditor", "admin"]),
)
@click.option("--clinic", "clinic_id")
@click.option("--country")
@click.option("--id", "client_id", help="Client id (default: generated)")
@click.option(
    "--jwk",
    "jwk_file",
    type=click.Path(exists=True, path_type=Path),
    help="The client's public JWK; without it a key pair is generated",
)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Where to write a generated private key"
)
def client_add(
    name: str,
    role: str,
    clinic_id: str | None,
    country: str | None,
    client_id: str | None,
    jwk_file: Path | None,
    out: Path | None,
) -> None:
    """Register a client; prints its id and where its private key went."""
    from registry.auth import service
    from registry.crypto.keys import (
        generate_key,
        private_jwk,
        read_jwk_file,
        thumbprint,
        write_private_file,
    )

    secret: dict[str, str] | None = None
    if jwk_file:
        jwk = read_jwk_file(jwk_file)
    else:
        secret = private_jwk(generate_key())
        secret["kid"] = thumbprint(secret)
        jwk = {k: v for k, v in secret.items() if k != "d"}
    with app_context() as (_app, ctx), ctx.db.unit_of_work() as uow:
        added = run_service(
            lambda: service.add_client(
                uow,
                actor=operator(),
                name=name,
                role=role,
                jwk=jwk,
                clinic_id=clinic_id,
                country=country,
                client_id=client_id,
            )
        )
        if secret is not None:
            target = out or ctx.settings.keys_dir / "clients" / f"{added.id}.jwk.json"
            write_private_file(target, json.dumps({**secret, "client_id": added.id}).encode())
            click.echo(f"private key written to {target}")
        uow.commit()
        click.echo(f"client {added.id} ({role}) registered")


# -- the registry's own keys ----------------------------------------------------------------
@main.group()
def keys() -> None:
    """The registry's own signing keys (tokens, certificates, documents)."""


@keys.command("list")
def keys_list() -> None:
    """Show every registry key with its status (no private material)."""
    with app_context() as (_app, ctx):
        click.echo(ctx.keystore.describe())


@keys.command("rotate")
@click.option(
    "--purpose",
    type=click.Choice(["certificate", "document", "token"]),
    default="certificate",
    show_default=True,
)
@click.option(
    "--compromised-since",
    help="The old certificate key was compromised from this time (ISO 8601): it is no longer "
    "published, its cards signed since then are revoked, and every valid certificate it "
    "signed is re-issued under the new key",
)
def keys_rotate(purpose: str, compromised_since: str | None) -> None:
    """Make a new key active for a purpose; the old one stays published to verify old cards.

    Every worker signs with the new key within REGISTRY_KEY_REFRESH_SECONDS, without a restart.
    """
    from registry.certificates.service import rotate_certificate_key
    from registry.crypto.rotation import rotate_key

    since = parse_when(compromised_since)
    if since is not None and purpose != "certificate":
        raise click.UsageError("--compromised-since applies to the certificate key")
    with app_context() as (_app, ctx), ctx.db.unit_of_work() as uow:
        if purpose == "certificate":
            rotation = run_service(
                lambda: rotate_certificate_key(uow, actor=operator(), compromised_since=since)
            )
            new_kid, old_kids, status = rotation.kid, [rotation.previous_kid], rotation.status
            reissued = len(rotation.reissued)
        else:
            replaced = run_service(lambda: rotate_key(uow, purpose=purpose, actor=operator()))
            new_kid, old_kids, status = (
                replaced.key.kid,
                replaced.replaced,
                replaced.replaced_status,
            )
            reissued = 0
        uow.commit()
        seconds = ctx.settings.key_refresh_seconds
    previous = ", ".join(k for k in old_kids if k)
    said = (
        "compromised (no longer published)"
        if status == "compromised"
        else "retired (still published)"
    )
    click.echo(
        f"{purpose} key {new_kid} active"
        + (f"; {previous} {said}" if previous else "")
        + (f"; {reissued} certificate(s) re-issued" if reissued else "")
    )
    click.echo(f"every worker holding the new key's file signs with it within {seconds:g} seconds")


# -- clinic side ---------------------------------------------------------------------------
@main.command()
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The clinic's private signing key (JWK with d and kid)",
)
@click.argument("bundle_file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    help="Where to write the signed bundle (default: standard output)",
)
def sign(key_file: Path, bundle_file: Path, out: Path | None) -> None:
    """Sign an examination bundle with a clinic key (runs at the clinic, needs no server)."""
    from registry.crypto.keys import KeyFormatError, load_private_jwk, read_jwk_file, thumbprint
    from registry.errors import InvalidResource
    from registry.examinations.signing import sign_bundle
    from registry.fhir.bundle import load_json

    try:
        jwk = read_jwk_file(key_file)
        key = load_private_jwk(jwk)
    except KeyFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        bundle = load_json(bundle_file.read_bytes(), max_depth=64)
    except InvalidResource as exc:
        raise click.ClickException(f"{bundle_file}: {exc.message}") from exc
    try:
        signed = sign_bundle(bundle, key, kid=thumbprint(jwk), when=datetime.now(UTC))
    except ValueError as exc:
        raise click.ClickException(f"{bundle_file}: {exc}") from exc
    text = json.dumps(signed, ensure_ascii=False, indent=2) + "\n"
    if out:
        out.write_text(text, "utf-8")
        click.echo(f"signed with key {thumbprint(jwk)}: {out}", err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.option("--clinic", "clinic_id", default="TJ-DUS-0007", show_default=True)
@click.option("--number", help="the clinic's examination number  [default: a new one]")
@click.option(
    "--examined-on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="the examination day  [default: three days ago]",
)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path))
def example(
    clinic_id: str, number: str | None, examined_on: datetime | None, out: Path | None
) -> None:
    """Write the profile's valid pre-departure example as a clinic would send it today.

    Its dates are moved so the examination was three days ago, so its results are current and
    the registry issues certificates for it on any day. Sign it with `registry sign`.
    """
    import uuid

    from registry.examinations.examples import examination_bundle

    bundle = examination_bundle(
        clinic_id=clinic_id,
        number=number or f"EXAMPLE-{uuid.uuid4().hex[:8].upper()}",
        examined_on=examined_on.date() if examined_on else None,
    )
    text = json.dumps(bundle, ensure_ascii=False, indent=2) + "\n"
    if out:
        out.write_text(text, "utf-8")
        click.echo(f"examination {bundle['identifier']['value']} of {clinic_id}: {out}", err=True)
    else:
        click.echo(text, nl=False)


# -- sealed values ---------------------------------------------------------------------------
@main.group()
def seal() -> None:
    """Values sealed at rest (AES-GCM, padded to buckets)."""


@seal.command("reseal")
@click.option(
    "--batch",
    type=click.IntRange(min=1, max=10_000),
    default=500,
    show_default=True,
    help="Rows per transaction",
)
def seal_reseal(batch: int) -> None:
    """Seal again every value sealed before padding, or under an older data key.

    Goes through every sealed column in batches (one transaction each), printing progress;
    values already padded under the primary key are left alone, so it is idempotent and may be
    interrupted and run again. Values that do not open are named and left as they are.
    """
    from registry.crypto.reseal import count, reseal_batch
    from registry.schema import sealed_columns

    unreadable = 0
    with app_context() as (_app, ctx):
        for column in sealed_columns():
            with ctx.db.reading() as uow:
                total = count(uow.session, column)
            looked_at = resealed = 0
            after = None
            while True:
                with ctx.db.unit_of_work() as uow:
                    done = reseal_batch(uow.session, uow.cipher, column, after=after, size=batch)
                    uow.commit()
                looked_at += done.looked_at
                resealed += done.resealed
                unreadable += len(done.unreadable)
                for identity in done.unreadable:
                    click.echo(f"  {column.name} {identity}: does not open; left as it is")
                if done.looked_at or not looked_at:  # a last, empty batch repeats nothing
                    click.echo(
                        f"{column.name}: {looked_at}/{total} looked at, {resealed} re-sealed"
                    )
                if done.after is None:
                    break
                after = done.after
    if unreadable:
        sys.exit(1)


# -- audit -----------------------------------------------------------------------------------
@main.group()
def audit() -> None:
    """The audit trail: verify it (against the transparency log) and export it."""


@audit.command("verify")
@click.pass_context
def audit_verify(click_context: click.Context) -> None:
    """The same as `registry log verify` (the audit trail is part of the log)."""
    from registry.transparency.cli import verify

    click_context.invoke(verify)


def _export_page(uow: Any, query: Any, base_url: str) -> Any:
    from registry.audit.service import export_events

    return run_service(
        lambda: export_events(uow.session, principal=operator(), query=query, base_url=base_url)
    )


@audit.command("export")
@click.option("--since", help="from this instant (ISO 8601, UTC if no offset), inclusive")
@click.option("--until", help="up to this instant, exclusive")
@click.option("--action", help="one action only, e.g. examination.authority-read")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="file (default stdout)"
)
def audit_export(
    since: str | None, until: str | None, action: str | None, output: str | None
) -> None:
    """Write audit events as FHIR AuditEvent resources, one JSON object a line (NDJSON)."""
    from registry.audit.service import EventQuery

    query = EventQuery(since=parse_when(since), until=parse_when(until), action=action, count=1000)
    lines: list[str] = []
    with app_context() as (_app, ctx):
        while True:
            with ctx.db.unit_of_work() as uow:
                page = _export_page(uow, query, ctx.settings.base_url)
                uow.commit()
            lines += [
                json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in page.resources
            ]
            if page.next_after is None:
                break
            query = replace(query, after_id=page.next_after)
    text = "".join(f"{line}\n" for line in lines)
    if output:
        Path(output).write_text(text, "utf-8")
        click.echo(f"{len(lines)} audit event(s) written to {output}", err=True)
    else:
        click.echo(text, nl=False)


from registry.verification.cli import register  # noqa: E402

register(main)

from registry.surveillance.cli import register as register_surveillance  # noqa: E402

register_surveillance(main)

from registry.examinations.integrity import check_bundles  # noqa: E402
from registry.transparency.cli import register as register_log  # noqa: E402

register_log(main, checks=[("examination versions", check_bundles)])

from registry.certificates.cli import register as register_certificates  # noqa: E402

register_certificates(main)
