"""``/log/*``: the checkpoint, tiles and entry bundles (c2sp.org/tlog-tiles), proofs, entries.

Public and unauthenticated, like the log itself; a plain Flask blueprint documented by hand.
"""

from __future__ import annotations

import base64

from flask import Blueprint, Response, jsonify, request

from registry.crypto.merkle import TILE_WIDTH, parse_tile_index
from registry.errors import BadRequest, NotFound, PayloadTooLarge
from registry.extensions import public_reads
from registry.transparency import service
from registry.web import context, page_operation, path_parameter, query_parameter

blp = Blueprint("log", __name__)
IMMUTABLE = "public, max-age=31536000, immutable"
MAX_NOTE = 64 * 1024


def _text(body: str, cache: str) -> Response:
    response = Response(body, mimetype="text/plain")
    response.headers["Cache-Control"] = cache
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@blp.route("/log/checkpoint")
@public_reads
def checkpoint() -> Response:
    with context().db.read_session() as session:
        note = service.checkpoint_note(session)
    return _text(note, "no-cache, max-age=1")


@blp.route("/log/key")
@public_reads
def key() -> Response:
    ctx = context()
    return _text(service.log_verifier_key(ctx.settings, ctx.keystore) + "\n", "public, max-age=300")


def _tile_address(rest: str) -> tuple[str, int, int]:
    parts = rest.split("/")
    width = TILE_WIDTH
    if len(parts) >= 3 and parts[-2].endswith(".p"):
        if not parts[-1].isdigit() or parts[-1].startswith("0"):
            raise NotFound("a partial tile's width is 1 to 255")
        width = int(parts[-1])
        parts = [*parts[:-2], parts[-2].removesuffix(".p")]
        if not 1 <= width < TILE_WIDTH:
            raise NotFound("a partial tile's width is 1 to 255")
    level = parts[0]
    if level != "entries" and (not level.isdigit() or (level != "0" and level.startswith("0"))):
        raise NotFound("a tile level is a number or 'entries'")
    try:
        index = parse_tile_index(parts[1:])
    except ValueError as exc:
        raise NotFound(str(exc)) from exc
    return level, index, width


@blp.route("/log/tile/<path:rest>")
@public_reads
def tile(rest: str) -> Response:
    level, index, width = _tile_address(rest)
    with context().db.read_session() as session:
        if level == "entries":
            data = service.entry_bundle(session, index, width)
        else:
            data = service.tile(session, int(level), index, width)
    response = Response(data, mimetype="application/octet-stream")
    response.headers["Cache-Control"] = IMMUTABLE
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _int_arg(name: str, *, required: bool) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        if required:
            raise BadRequest(f"{name} is required")
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest(f"{name} must be a non-negative whole number")
    return int(raw)


@blp.route("/log/proof/inclusion")
@public_reads
def inclusion() -> Response:
    leaf = service.parse_hash(request.args.get("leaf_hash", ""))
    size = _int_arg("tree_size", required=False)
    with context().db.read_session() as session:
        proof = service.inclusion(session, leaf, size)
    return jsonify(proof.as_json())


@blp.route("/log/proof/consistency")
@public_reads
def consistency() -> Response:
    first = _int_arg("first", required=True)
    second = _int_arg("second", required=True)
    assert first is not None and second is not None
    with context().db.read_session() as session:
        hashes = service.consistency(session, first, second)
    return jsonify(
        first=first, second=second, hashes=[base64.b64encode(h).decode() for h in hashes]
    )


@blp.route("/log/entries/<int:index>")
@public_reads
def entry(index: int) -> Response:
    with context().db.read_session() as session:
        return jsonify(service.entry(session, index))


@blp.route("/log/cosignatures", methods=["POST"])
def cosign() -> Response:
    if request.content_length is not None and request.content_length > MAX_NOTE:
        raise PayloadTooLarge("a cosigned checkpoint is at most 64 KiB")
    text = request.stream.read(MAX_NOTE + 1)
    if len(text) > MAX_NOTE:
        raise PayloadTooLarge("a cosigned checkpoint is at most 64 KiB")
    try:
        note = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("a cosigned checkpoint is UTF-8 text") from exc
    with context().db.unit_of_work() as uow:
        size = service.add_cosignature(uow, note_text=note)
        uow.commit()
    return jsonify(accepted=True, size=size)


_TAG = "transparency log"
OPENAPI_PATHS = {
    "/log/checkpoint": {
        "get": page_operation(
            "The latest signed checkpoint (c2sp.org/tlog-checkpoint) with witness cosignatures",
            content="text/plain",
            tag=_TAG,
        )
    },
    "/log/key": {
        "get": page_operation(
            "The log's note verifier key (name+id+Ed25519 key) that witnesses pin",
            content="text/plain",
            tag=_TAG,
        )
    },
    "/log/tile/{rest}": {
        "get": page_operation(
            "A tile (tile/<L>/<N>[.p/<W>]) or entry bundle (tile/entries/<N>[.p/<W>]), "
            "c2sp.org/tlog-tiles",
            content="application/octet-stream",
            tag=_TAG,
            parameters=[path_parameter("rest", "e.g. 0/x001/234 or entries/000.p/17")],
        )
    },
    "/log/proof/inclusion": {
        "get": page_operation(
            "An inclusion proof (RFC 9162) for a leaf hash in a signed tree size",
            content="application/json",
            tag=_TAG,
            parameters=[
                query_parameter(
                    "leaf_hash", "hex or base64 of the 32-byte leaf hash", type="string"
                ),
                query_parameter(
                    "tree_size", "a signed tree size (default: the latest)", type="integer"
                ),
            ],
        )
    },
    "/log/proof/consistency": {
        "get": page_operation(
            "A consistency proof (RFC 9162) between two signed tree sizes",
            content="application/json",
            tag=_TAG,
            parameters=[
                query_parameter("first", "the smaller tree size", type="integer"),
                query_parameter("second", "the larger tree size", type="integer"),
            ],
        )
    },
    "/log/entries/{index}": {
        "get": page_operation(
            "The public contents of one leaf",
            content="application/json",
            tag=_TAG,
            parameters=[path_parameter("index", "the leaf index")],
        )
    },
    "/log/cosignatures": {
        "post": page_operation(
            "A registered witness returns one of our checkpoints with its cosignature",
            content="application/json",
            tag=_TAG,
        )
    },
}
