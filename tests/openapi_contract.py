"""Checks of Spotify (or emulator) answers against Spotify's published OpenAPI description.

`response_problems(load_spec(api_url), response)` lists what is wrong with one
`requests.Response`: openapi-core validation of the documented operation and
status, Spotify's error shape for undocumented statuses, and, for successes,
fields the description does not declare or marks deprecated (gone for a 2026
development-mode app). Token-endpoint answers are checked against Spotify's
documented token and OAuth-error shapes.
"""

from __future__ import annotations

from pathlib import Path

import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.templating.paths.exceptions import PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_schema_validator import OAS30Validator

SPEC_NAME = "shared/spotify-web-api/fixed-spotify-open-api.yml"
# ../shared beside the checkout; a worktree one level deeper (/work/wt/NAME) finds it higher up
SPEC_PATH = next(
    (p / SPEC_NAME for p in Path(__file__).resolve().parents if (p / SPEC_NAME).exists()),
    Path(__file__).resolve().parents[2] / SPEC_NAME,
)
TOKEN_SCHEMA = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in", "scope"],
    "properties": {
        "access_token": {"type": "string", "minLength": 20},
        "token_type": {"enum": ["Bearer"]},
        "expires_in": {"enum": [3600]},
        "refresh_token": {"type": "string", "minLength": 20},
        "scope": {"type": "string"},
    },
    "additionalProperties": False,
}
OAUTH_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "error_description"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}


def load_spec(api_url: str) -> tuple:
    """(raw spec dict, openapi-core OpenAPI) with `api_url + "/v1"` added as a server.

    Gaps of the published description, patched narrowly here and nowhere else:
    * Spotify answers `"next": null, "cursors": null` on the last page of a
      cursor-paged list (recently played); the description lacks `nullable`.
    * A playlist item's `item`/`track` is a oneOf with a discriminator on `type`
      but no mapping, so "track" would resolve to a schema named `track` that
      does not exist; the mapping it means is added.
    """
    spec = yaml.load(SPEC_PATH.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    spec["servers"].insert(0, {"url": api_url + "/v1"})
    schemas = spec["components"]["schemas"]
    for field in ("next", "cursors"):
        schemas["CursorPagingObject"]["properties"][field]["nullable"] = True
    episode_or_track = {
        "track": "#/components/schemas/TrackObject",
        "episode": "#/components/schemas/EpisodeObject",
    }
    for field in ("item", "track"):
        schemas["PlaylistTrackObject"]["properties"][field]["discriminator"]["mapping"] = episode_or_track
    # * Recently played holds podcast episodes beside tracks (issue 12 asks the emulator to
    #   send them, as the app must cope); the description allows only a TrackObject there.
    #   Given the same oneOf as a playlist item, an episode is checked as an EpisodeObject.
    schemas["PlayHistoryObject"]["properties"]["track"] = {
        "oneOf": [{"$ref": ref} for ref in episode_or_track.values()],
        "discriminator": {"propertyName": "type", "mapping": episode_or_track},
    }
    # * A local file (is_local true) comes with null ids, hrefs and URIs for itself, its
    #   album and its artists, and a null album type and release date; the description
    #   declares none of them nullable.
    local_nulls = {
        "TrackObject": ("id", "href"),
        "AlbumBase": ("id", "href", "uri", "album_type", "release_date", "release_date_precision"),
        "SimplifiedArtistObject": ("id", "href", "uri"),
    }
    for schema, fields in local_nulls.items():
        for field in fields:
            declared = schemas[schema]["properties"][field]
            declared["nullable"] = True
            if "enum" in declared:
                declared["enum"] = [*declared["enum"], None]
    return spec, OpenAPI.from_dict(spec)


def _resolve(schema: dict, spec: dict) -> dict:
    while "$ref" in schema:
        node = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _properties(schema: dict, spec: dict) -> tuple:
    """Declared properties and required names of a schema, through allOf."""
    schema = _resolve(schema, spec)
    props, required = dict(schema.get("properties", {})), set(schema.get("required", []))
    for part in schema.get("allOf", []):
        more, more_required = _properties(part, spec)
        props.update(more)
        required |= more_required
    return props, required


def undeclared_fields(value, schema: dict, spec: dict, where: str = "$") -> list:
    """Fields the description does not declare, or declares deprecated and optional."""
    schema = _resolve(schema, spec)
    if "oneOf" in schema:
        return min((undeclared_fields(value, option, spec, where) for option in schema["oneOf"]), key=len)
    if isinstance(value, list):
        items = schema.get("items") or next(
            (_resolve(p, spec).get("items") for p in schema.get("allOf", []) if _resolve(p, spec).get("items")), {}
        )
        return [p for i, v in enumerate(value) for p in undeclared_fields(v, items, spec, f"{where}[{i}]")]
    if not isinstance(value, dict):
        return []
    props, required = _properties(schema, spec)
    problems = []
    for key, item in value.items():
        if key not in props:
            problems.append(f"{where}.{key}: not in the description")
        elif props[key].get("deprecated") and key not in required:
            problems.append(f"{where}.{key}: deprecated (gone for development-mode apps)")
        elif item is not None:
            problems.extend(undeclared_fields(item, props[key], spec, f"{where}.{key}"))
    return problems


def response_problems(openapi_spec, response) -> list:
    """What is wrong with one recorded response, per the OpenAPI description."""
    spec, openapi = openapi_spec
    path = requests.utils.urlparse(response.url).path
    label = f"{response.request.method} {path} {response.status_code}"
    if response.headers.get("X-Emulator-Fault") == "garbage":
        return []  # deliberately broken
    if path in ("/api/token",):
        schema = TOKEN_SCHEMA if response.ok else OAUTH_ERROR_SCHEMA
        return [f"{label}: {e.message}" for e in OAS30Validator(schema).iter_errors(response.json())]
    if not path.startswith("/v1/"):
        return []
    request = response.request.copy()
    request.url = request.url.replace(path, path.rstrip("/"))  # spotipy's "me/" spelling
    try:
        openapi.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(response))
    except (ResponseNotFound, PathNotFound):
        # a status or path the description does not list (e.g. 400): still Spotify's error shape
        assert not response.ok, f"{label}: success on an undocumented path or status"
        return [f"{label}: {problem}" for problem in _error_shape_problems(response.json(), spec)]
    except Exception as error:  # openapi-core raises one of several validation errors
        causes = getattr(error, "schema_errors", None) or getattr(error.__cause__, "schema_errors", None)
        details = (
            "; ".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in causes or [])
            or str(error.__cause__ or error)[:500]
        )
        return [f"{label}: {type(error).__name__}: {details}"]
    if not response.ok:
        return []
    operation = find_operation(spec, path.rstrip("/")[len("/v1") :], response.request.method.lower())
    body_schema = _resolve(operation["responses"][str(response.status_code)], spec)
    body_schema = body_schema["content"]["application/json"]["schema"]
    return [f"{label}: {problem}" for problem in undeclared_fields(response.json(), body_schema, spec)]


def _error_shape_problems(body, spec) -> list:
    error_object = _resolve({"$ref": "#/components/schemas/ErrorObject"}, spec)
    shape = {"type": "object", "required": ["error"], "properties": {"error": error_object}}
    return [e.message for e in OAS30Validator(shape).iter_errors(body)]


def find_operation(spec: dict, path: str, method: str) -> dict:
    for template, operations in spec["paths"].items():
        parts, wanted = template.strip("/").split("/"), path.strip("/").split("/")
        if len(parts) == len(wanted) and all(p.startswith("{") or p == w for p, w in zip(parts, wanted, strict=True)):
            if method in operations:
                return operations[method]
    raise KeyError(f"{method} {path} is not in the description")
