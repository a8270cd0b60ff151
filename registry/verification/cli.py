"""The `verify`, `trust-list export` and `issuer` commands of the `registry` command line.

``register(main)`` mounts them on the ``registry`` command. The commands that need the
registry's database import ``registry.cli`` lazily, since that module mounts these at its end.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from registry.jsonlimits import loads_strict
from registry.verification.verdict import (
    EXAMINATION_CERTIFICATE,
    VALID,
    Presented,
    destination_code,
)

__all__ = ["register"]


def _print_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _read_json(path: Path, what: str) -> Any:
    try:
        return loads_strict(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read the {what} {path}: {exc}") from exc


def _accepted(answers: list[dict[str, Any]]) -> bool:
    return all(a["result"] == VALID and a["card_type"] == EXAMINATION_CERTIFICATE for a in answers)


def _presented(card: str | None, certificate_id: str | None, birth_date: str | None) -> list[Any]:
    from registry.verification.offline import presented_cards

    if certificate_id or birth_date:
        if card or not (certificate_id and birth_date):
            raise click.UsageError("give a card, or --certificate-id with --birth-date")
        return [Presented(certificate_id=certificate_id, birth_date=birth_date)]
    if not card:
        raise click.UsageError("give QR text (shc:/…), a .smart-health-card file or a JWS")
    return presented_cards(card)


def _pinned_registry_keys(registry_jwks: Path | None) -> Any:
    """The registry's document keys: from --registry-jwks, else this registry's own keys."""
    from registry.verification.offline import TrustListError, document_keys_from

    if registry_jwks is not None:
        try:
            return document_keys_from(_read_json(registry_jwks, "registry key set"))
        except TrustListError as exc:
            raise click.ClickException(str(exc)) from exc
    local = _local_document_keys()
    if local:
        return local
    click.echo(
        "warning: no registry key to check the trust list against (give --registry-jwks); "
        "it is checked against the key it carries, which shows it is intact, not who made it",
        err=True,
    )
    return None


def _local_document_keys() -> Any:
    """On the registry's own machine: the document keys of its keys folder (none elsewhere).

    Read from the files, which a rotation marks too, so that no database is needed here.
    """
    from registry.config import ROOT, Settings
    from registry.crypto.keystore import KeyStore

    local = KeyStore(Settings.from_env(ROOT / "instance").keys_dir).keys("document")
    return {key.kid: key.public_key for key in local}


def _verify_offline(
    presented: list[Any], trust_list_file: Path, registry_jwks: Path | None
) -> list[dict[str, Any]]:
    from registry.verification.offline import TrustList, TrustListError, verify_offline
    from registry.verification.schemas import VerificationSchema

    try:
        trust_list = TrustList.from_file(
            trust_list_file, registry_keys=_pinned_registry_keys(registry_jwks)
        )
    except TrustListError as exc:
        raise click.ClickException(str(exc)) from exc
    answers = []
    for item in presented:
        checked = verify_offline(item, trust_list=trust_list)
        answer = VerificationSchema().dump(checked.verification)
        answer["offline"] = {
            "trust_list_issued_at": checked.trust_list_issued_at.isoformat(),
            "trust_list_signature": "pinned registry key"
            if checked.trust_list_pinned
            else "key carried by the list (unpinned)",
            "revocation_data_as_of": checked.revocation_data_as_of.isoformat()
            if checked.revocation_data_as_of
            else None,
            "revocation_data_age_seconds": checked.revocation_age_seconds,
        }
        answers.append(answer)
    return answers


def _verify_online(presented: list[Any]) -> list[dict[str, Any]]:
    from registry.cli_support import app_context, operator
    from registry.verification import service
    from registry.verification.schemas import VerificationSchema

    answers = []
    with app_context() as (_app, ctx):
        for item in presented:
            verification = service.verify(
                ctx.db,
                presented=item,
                principal=operator(),
                channel="cli",
            )
            answers.append(VerificationSchema().dump(verification))
    return answers


@click.command("verify")
@click.argument("card", required=False)
@click.option("--offline", is_flag=True, help="Judge against a trust list file; no network.")
@click.option(
    "--trust-list",
    "trust_list_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The trust list (from `registry trust-list export` or /api/v1/trust-list).",
)
@click.option(
    "--registry-jwks",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A copy of the registry's /.well-known/registry-keys.json: the trust list's signature "
    "is checked against its keys of purpose document.",
)
@click.option("--certificate-id", help="A certificate number (online, with --birth-date).")
@click.option("--birth-date", help="The holder's birth date, YYYY-MM-DD.")
@click.option(
    "--for-destination",
    help="The country checked for (e.g. RU): a certificate for another one is not valid here.",
)
def verify_command(
    card: str | None,
    offline: bool,
    trust_list_file: Path | None,
    registry_jwks: Path | None,
    certificate_id: str | None,
    birth_date: str | None,
    for_destination: str | None,
) -> None:
    """Verify a card: QR text (shc:/…), a .smart-health-card file or a JWS.

    Prints the same JSON as POST /api/v1/verify (offline: without a receipt, with the age of
    the revocation data). Exit status 0 only for a valid examination certificate.
    """
    try:
        wanted = destination_code(for_destination)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--for-destination") from None
    presented = [
        replace(p, for_destination=wanted) for p in _presented(card, certificate_id, birth_date)
    ]
    if offline:
        if trust_list_file is None:
            raise click.UsageError("--offline needs --trust-list FILE")
        if any(p.certificate_id for p in presented):
            raise click.UsageError("a certificate number is checked online only")
        answers = _verify_offline(presented, trust_list_file, registry_jwks)
    else:
        answers = _verify_online(presented)
    _print_json(answers[0] if len(answers) == 1 else answers)
    sys.exit(0 if _accepted(answers) else 1)


@click.group("trust-list")
def trust_list_group() -> None:
    """The signed trust list for offline verification."""


@trust_list_group.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
def trust_list_export(output: Path | None) -> None:
    """Write the current trust list (JWS and document) to a file or standard output."""
    from registry.cli_support import app_context
    from registry.verification.trustlist import data_version, trust_list

    with app_context() as (_app, ctx), ctx.db.reading() as uow:
        # the document /api/v1/trust-list serves for the same data: same version, same bytes
        signed = trust_list(uow, version=data_version(uow.session, ctx.keystore))
    text = json.dumps(
        {"jws": signed.jws, "document": signed.document}, indent=2, ensure_ascii=False
    )
    if output is None:
        click.echo(text)
        return
    output.write_text(text + "\n", "utf-8")
    document = signed.document
    click.echo(
        f"trust list of {document['registry']} written to {output}: "
        f"{len(document['issuers'])} issuer(s), {len(document['clinics'])} clinic(s), "
        f"{len(document['revocations'])} revocation list(s), issued {document['issued_at']}"
    )


@click.group("issuer")
def issuer_group() -> None:
    """Other SMART Health Card issuers of the trust network."""


@issuer_group.command("add")
@click.option("--iss", required=True, help="The issuer's URL, as its cards' iss claim says.")
@click.option(
    "--jwks",
    "jwks_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Its published JWKS (/.well-known/jwks.json).",
)
@click.option(
    "--crl",
    "crl_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A revocation list (/.well-known/crl/<kid>.json); repeat for each key.",
)
@click.option("--name", help="A name to show for it.")
def issuer_add(iss: str, jwks_file: Path, crl_files: tuple[Path, ...], name: str | None) -> None:
    """Register another issuer (or replace its keys and revocation lists)."""
    from registry.cli_support import app_context, operator, run_service
    from registry.verification import issuers

    jwks = _read_json(jwks_file, "JWKS")
    crls = [_read_json(path, "revocation list") for path in crl_files]
    with app_context() as (_app, ctx), ctx.db.unit_of_work() as uow:
        row, created = run_service(
            lambda: issuers.add_issuer(
                uow,
                principal=operator(),
                iss=iss,
                jwks=jwks,
                crls=crls,
                name=name,
                settings=ctx.settings,
            )
        )
        uow.commit()
        keys = len(row.jwks["keys"])
        click.echo(
            f"{'registered' if created else 'updated'} issuer {row.iss}: {keys} key(s), "
            f"{len(row.crl)} revocation list(s)"
        )


def _issuer_status_command(status: str, verb: str) -> click.Command:
    @click.command(verb)
    @click.argument("iss")
    @click.option("--reason", required=True)
    def command(iss: str, reason: str) -> None:
        from registry.cli_support import app_context, operator, run_service
        from registry.verification import issuers

        with app_context() as (_app, ctx), ctx.db.unit_of_work() as uow:
            run_service(
                lambda: issuers.set_issuer_status(
                    uow, principal=operator(), iss=iss, status=status, reason=reason
                )
            )
            uow.commit()
        click.echo(f"issuer {iss} {status}")

    command.__doc__ = f"Mark an issuer {status}."
    return command


issuer_group.add_command(_issuer_status_command("suspended", "suspend"))
issuer_group.add_command(_issuer_status_command("active", "reinstate"))


@issuer_group.command("list")
def issuer_list() -> None:
    """List the registered issuers."""
    from registry.cli_support import app_context
    from registry.verification import issuers

    with app_context() as (_app, ctx), ctx.db.reading() as uow:
        for row in issuers.list_issuers(uow):
            crl_time = row.crl_updated_at.isoformat() if row.crl_updated_at else "no CRL"
            click.echo(
                f"{row.iss}  {row.status:<9} {len(row.jwks['keys'])} key(s)  CRL: {crl_time}"
            )


def register(main: click.Group) -> None:
    """Mount ``verify``, ``trust-list`` and ``issuer`` on the ``registry`` command."""
    main.add_command(verify_command)
    main.add_command(trust_list_group)
    main.add_command(issuer_group)
