"""A property-based fuzz of the three HTTP routes (PRODUCT.md §3): whatever a caller sends, with valid app
settings and Azure answering, the answer is a 2xx or a 4xx, JSON, in the documented shape, and it never
echoes the function key nor holds a secret the emulator issued.

Each request goes to the real handler, through the stand-in Functions host, as a real `func.HttpRequest`
with the query string in its URL as the host passes it. Valid requests really record and enqueue rotations
on Azurite (the queue is not processed). Generation is derandomized, so CI runs the same requests each time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e import openapi_document as doc

BASE_URLS = ("http://localhost:7071", "https://app-rotation.azurewebsites.net")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
FIELDS = ("target", "keyKind", "force")
ROUTES = {"request_rotation": ("/api/rotations", "POST"), "rotation_status": ("/api/rotations/{id}", "GET"),
          "targets": ("/api/targets", "GET")}
EXAMPLES = {"request_rotation": 360, "request_rotation_after_a_rotation": 250, "rotation_status": 250,
            "targets": 150}
# Shortest function key checked for echoes: a shorter one could appear in an answer by chance.
MIN_KEY_LENGTH = 12


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.large_base_example])


# -- bodies: each kind knows its bytes and prints as the exact recipe of them ---------------------------------

@dataclass(frozen=True)
class Raw:
    data: bytes

    def render(self) -> bytes:
        return self.data


@dataclass(frozen=True)
class Json:
    value: Any
    ascii: bool = True

    def render(self) -> bytes:
        return json.dumps(self.value, ensure_ascii=self.ascii).encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Nested:
    """`depth` arrays or objects inside each other, optionally as the value of a known field."""

    depth: int
    kind: str  # "array" | "object"
    inside: str | None = None

    def render(self) -> bytes:
        opening, closing = ("[", "]") if self.kind == "array" else ('{"a": ', "}")
        text = opening * self.depth + "1" + closing * self.depth
        return (f'{{"{self.inside}": {text}}}' if self.inside else text).encode()


@dataclass(frozen=True)
class BigNumber:
    """A JSON number of `digits` digits (or with an exponent of that many), bare or as a field's value."""

    digits: int
    inside: str | None = None
    exponent: bool = False

    def render(self) -> bytes:
        number = "1e" + "9" * self.digits if self.exponent else "9" * self.digits
        return (f'{{"{self.inside}": {number}}}' if self.inside else number).encode()


@dataclass(frozen=True)
class Request:
    function: str
    method: str
    route_id: str | None = None
    body: Raw | Json | Nested | BigNumber = Raw(b"")
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    base_url: str = BASE_URLS[0]

    @property
    def path(self) -> str:
        path = ROUTES[self.function][0]
        return path.replace("{id}", quote(self.route_id or "", safe="")) if "{id}" in path else path

    @property
    def url(self) -> str:
        query = urlencode(self.params)
        return self.base_url + self.path + (f"?{query}" if query else "")

    def secrets(self) -> list[str]:
        """The function keys the request carries: no answer may hold them."""
        lowered = {name.lower(): value for name, value in self.headers.items()}
        keys = [self.params.get("code"), lowered.get("x-functions-key")]
        return [key for key in keys if key and len(key) >= MIN_KEY_LENGTH]


# -- strategies ---------------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**300), max_value=10**300),
    st.floats(), st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=15,
)
long_texts = st.one_of(
    st.integers(min_value=256, max_value=200_000).map(lambda n: "x" * n),
    st.text(min_size=200, max_size=1_000),
    st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1, max_size=300),
)
wrong_values = st.one_of(json_values, long_texts, st.integers(min_value=10**18, max_value=10**400),
                         st.sampled_from(["", " ", "\x00", "\u202e", "null", "true", "1", "[]", "{}"]))
# Function keys look like Azure's (base64 of random bytes): drawn as a seed, so that a shrunk example still
# carries a key that cannot appear in an answer by chance (a key of twelve zeros could be in a timestamp).
function_keys = st.builds(
    lambda seed, size, alphabet: alphabet(hashlib.sha512(str(seed).encode()).digest()[:size]).decode(),
    st.integers(min_value=0), st.sampled_from([9, 16, 30, 40]),
    st.sampled_from([base64.b64encode, base64.urlsafe_b64encode]),
)
query_params = st.dictionaries(
    st.one_of(st.sampled_from(["target", "id", "force", "keyKind", "api-version", "clientId", "CODE"]),
              st.text(max_size=12)),
    st.text(max_size=60), max_size=4,
).filter(lambda params: "code" not in params)
header_names = st.one_of(
    st.sampled_from(["accept", "content-type", "x-forwarded-host", "x-forwarded-proto", "x-ms-client-principal",
                     "x-ms-client-principal-name", "origin", "authorization", "x-functions-key", "host",
                     "x-original-url", "x-arr-log-id"]),
    st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,24}", fullmatch=True),
)
headers = st.dictionaries(header_names, st.text(max_size=120), max_size=4)


@st.composite
def auth(draw: Any, base_params: Any = query_params) -> tuple[dict[str, str], dict[str, str]]:
    """Query parameters and headers, with a function key in `code=` or `x-functions-key` most of the time."""
    params, extra = dict(draw(base_params)), dict(draw(headers))
    where = draw(st.sampled_from(["code", "code", "header", "none"]))
    if where == "code":
        params["code"] = draw(function_keys)
    elif where == "header":
        extra["x-functions-key"] = draw(function_keys)
    return params, extra


def request_bodies(account: str) -> Any:
    kinds = st.one_of(st.sampled_from(["primary", "secondary"]),
                      st.sampled_from(["Primary", "SECONDARY", "primaryReadonly", "secondaryReadonly", "tertiary",
                                       "", " primary", "primary\n"]),
                      wrong_values)
    targets = st.one_of(st.just(account), wrong_values, st.text(max_size=40),
                        st.sampled_from([account.upper(), f" {account}", f"{account}\n", f"../{account}",
                                         f"{account}\x00", "*", "docdb-nope"]))
    forces = st.one_of(st.booleans(), st.sampled_from([0, 1, "true", "false", None, "yes", [True]]), wrong_values)
    unknown = st.dictionaries(st.text(max_size=30).filter(lambda name: name not in FIELDS), json_values,
                              min_size=1, max_size=3)
    valid = st.fixed_dictionaries({"target": st.just(account)},
                                  optional={"keyKind": st.sampled_from(["primary", "secondary"]),
                                            "force": st.booleans()})
    known_fields = st.fixed_dictionaries({}, optional={"target": targets, "keyKind": kinds, "force": forces})
    with_unknown = st.builds(lambda known, more: {**more, **known}, known_fields | valid, unknown)
    invalid_utf8 = st.builds(
        lambda prefix, bad, valid_target: prefix + bad + (f'", "x": "{valid_target}"}}'.encode()),
        st.sampled_from([b'{"target": "', b'{"keyKind": "', b"", b'{"']),
        st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x80"]),
        st.just(account),
    )
    raw_texts = st.sampled_from([
        b"", b" ", b"\n\t ", b"null", b"true", b"0", b'""', b"[]", b"{}", b"\x00", b"{", b"}", b'{"target"}',
        b"\xef\xbb\xbf" + json.dumps({"target": account}).encode(),  # UTF-8 byte order mark
        json.dumps({"target": account}).encode("utf-16"),
        f'{{"target": "{account}",}}'.encode(), f"{{'target': '{account}'}}".encode(),
        f'{{"target": "docdb-nope", "target": "{account}"}}'.encode(),  # duplicate key: the last wins
        f'{{"target": "{account}", "force": NaN}}'.encode(), f'{{"target": "{account}", "force": Infinity}}'.encode(),
        f'{{"target": "{account}", "keyKind": "\\ud800"}}'.encode(), f'{{"target": "\\u0000{account}"}}'.encode(),
        f'  \n{{"target": "{account}"}}\n  '.encode(),
    ])
    depths = st.one_of(st.sampled_from([1, 10, 100, 500, 990, 1_000, 5_000, 100_000]),
                       st.integers(min_value=1, max_value=200_000))
    digits = st.one_of(st.sampled_from([1, 19, 309, 4_300, 4_301, 5_000, 100_000]),
                       st.integers(min_value=1, max_value=20_000))
    places = st.sampled_from([None, "target", "keyKind", "force", "other"])
    return st.one_of(
        st.builds(Json, valid),
        st.builds(Json, valid),
        st.builds(Json, known_fields, st.booleans()),
        st.builds(Json, known_fields, st.booleans()),
        st.builds(Json, with_unknown, st.booleans()),
        st.builds(Json, json_values, st.booleans()),
        st.builds(Raw, st.binary(max_size=2_000)),
        st.builds(Raw, invalid_utf8),
        st.builds(Raw, raw_texts),
        st.builds(Nested, depths, st.sampled_from(["array", "object"]), places),
        st.builds(BigNumber, digits, places, st.booleans()),
    )


def other_bodies(account: str) -> Any:
    """What a GET might carry by mistake: mostly nothing, sometimes anything a POST could."""
    return st.one_of(st.just(Raw(b"")), request_bodies(account))


def methods(served: str) -> Any:
    """Mostly the method the route serves; any method, in either case, the rest of the time."""
    return st.one_of(st.just(served), st.just(served), st.just(served), st.sampled_from(METHODS),
                     st.sampled_from(METHODS).map(str.lower))


def route_ids(known: list[str]) -> Any:
    uuid_like = st.uuids().map(str)
    return st.one_of(
        st.sampled_from(known), st.sampled_from(known), uuid_like,
        st.builds(lambda rid, how: how(rid), st.sampled_from(known) | uuid_like, st.sampled_from([
            str.upper, lambda rid: rid + "\n", lambda rid: f" {rid}", lambda rid: "{" + rid + "}",
            lambda rid: "urn:uuid:" + rid, lambda rid: rid.replace("-", ""), lambda rid: rid[:-1],
            lambda rid: rid + "/../x", lambda rid: rid + "'", lambda rid: rid + "%00"])),
        st.from_regex(r"[0-9a-fA-F-]{36}", fullmatch=True),  # passes the id pattern: a real table lookup
        st.sampled_from(["", ".", "..", "../../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "..\\..\\windows",
                         "%00", "rotation", "target", "*", "'", "' or ''='", "PartitionKey eq 'rotation'",
                         "$metadata", "keyrotations()", "\x00", "\u202e", "😀" * 9]),
        st.text(max_size=60),
        st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1, max_size=60),
        st.integers(min_value=256, max_value=100_000).map(lambda n: "a" * n),
    )


def requests(function: str, account: str, known_ids: list[str] | None = None) -> Any:
    served = ROUTES[function][1]
    ids = route_ids(known_ids) if function == "rotation_status" else st.none()
    bodies = request_bodies(account) if served == "POST" else other_bodies(account)
    return st.builds(
        lambda method, route_id, body, extra, base_url: Request(function, method, route_id, body, extra[0],
                                                                 extra[1], base_url),
        methods(served), ids, bodies, auth(), st.sampled_from(BASE_URLS),
    )


# -- checking one answer ------------------------------------------------------------------------------------

@dataclass
class Fuzz:
    """Sends requests to the handlers and checks each answer; keeps every answer body for the final check."""

    world: Any = field(repr=False)
    host: Any = field(default=None, repr=False)
    bodies: list[str] = field(default_factory=list, repr=False)
    statuses: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.host = self.world.host()

    def send(self, request: Request) -> tuple[Any, Any]:
        headers = {"content-type": "application/json", **request.headers}
        http_request = func.HttpRequest(request.method, request.url, headers=headers, params=request.params,
                                        route_params={"id": request.route_id} if request.route_id is not None
                                        else {}, body=request.body.render())
        response = self.host.functions[request.function].get_user_function()(http_request)
        text = response.get_body().decode("utf-8")
        self.bodies.append(text)
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        status = response.status_code
        assert 200 <= status < 300 or 400 <= status < 500, f"{request.function} answered {status}: {text[:500]}"
        assert response.mimetype == "application/json"
        document = json.loads(text)
        for key in request.secrets():
            assert key not in text or key in request.body.render().decode("utf-8", "replace") + (
                request.route_id or ""), f"{request.function} echoed the function key in its answer"
        if status >= 400:
            assert isinstance(document, dict) and set(document) == {"error"}, text[:500]
            error = document["error"]
            assert isinstance(error, dict) and set(error) == {"code", "message"}, text[:500]
            assert isinstance(error["code"], str) and isinstance(error["message"], str), text[:500]
            assert error["code"] and error["message"]
        served = ROUTES[request.function][1]
        if request.method.upper() != served:
            assert status == 405, f"{request.function} answered {status} to {request.method}: {text[:500]}"
            assert document["error"]["code"] == "MethodNotAllowed"
            assert response.headers["Allow"] == served
        if status == 202:
            assert set(document) == {"id", "status", "statusUrl"}, text
            assert document["status"] == "queued"
            assert response.headers["Location"] == document["statusUrl"]
            assert document["statusUrl"] == f"{request.base_url}/api/rotations/{document['id']}"
        problems = doc.answer_problems(request.function, status, dict(response.headers), document)
        assert problems == [], f"the answer differs from openapi.yaml: {problems}"
        return response, document

    def assert_no_issued_secret(self) -> None:
        issued = [value for value in self.world.admin.issued()["all"] if value]
        assert issued, "the emulator issued no secret: the check would prove nothing"
        text = "\n".join(self.bodies)
        leaked = [f"issued value #{index} ({len(value)} characters)" for index, value in enumerate(issued)
                  if value in text]  # which ones, never any part of them
        assert leaked == [], "an answer holds a secret the emulator issued"


def rotate_once(fuzz: Fuzz) -> str:
    """One rotation run to its end, so that the target has a live secret, a cooldown and a last rotation."""
    response, document = fuzz.send(Request("request_rotation", "POST", body=Json({"target": fuzz.world.account})))
    assert response.status_code == 202
    fuzz.host.process_queues()
    return document["id"]


def drop_queued(world: Any) -> int:
    """Delete, unprocessed, the requests this test queued: the queue is Azurite's, shared by the session,
    and later tests count what they process."""
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy

    from cosmos_key_rotation.names import QUEUE_NAME

    client = QueueClient.from_connection_string(world.azurite.connection_string, QUEUE_NAME,
                                                message_decode_policy=TextBase64DecodePolicy())
    dropped, others = 0, []
    while batch := list(client.receive_messages(max_messages=32, visibility_timeout=60)):
        for message in batch:
            try:
                mine = json.loads(message.content).get("target") == world.account
            except (ValueError, AttributeError):
                mine = False
            if mine:
                client.delete_message(message)
                dropped += 1
            else:
                others.append(message)
    for message in others:  # not this test's: visible again, as it was
        client.update_message(message, visibility_timeout=0)
    return dropped


@pytest.fixture
def fuzz(world):
    started, fuzzer = time.monotonic(), Fuzz(world)
    yield fuzzer
    dropped = drop_queued(world)
    print(f"\n{len(fuzzer.bodies)} requests in {time.monotonic() - started:.1f} s, "
          f"statuses {dict(sorted(fuzzer.statuses.items()))}, {dropped} queued requests dropped")


# -- the fuzz -----------------------------------------------------------------------------------------------

def test_fuzz_request_rotation(world, fuzz):
    """Before any rotation: valid requests are recorded and queued (202)."""

    @fuzz_settings(EXAMPLES["request_rotation"])
    @given(request=requests("request_rotation", world.account))
    def one(request):
        fuzz.send(request)

    one()
    assert len(fuzz.bodies) >= EXAMPLES["request_rotation"]
    assert {202, 400, 404, 405} <= set(fuzz.statuses)
    fuzz.assert_no_issued_secret()


def test_fuzz_request_rotation_after_a_rotation(world, fuzz):
    """After a rotation: a valid request meets the cooldown (429) or the live key (409), unless forced."""
    rotate_once(fuzz)

    @fuzz_settings(EXAMPLES["request_rotation_after_a_rotation"])
    @given(request=requests("request_rotation", world.account))
    def one(request):
        fuzz.send(request)

    one()
    assert len(fuzz.bodies) > EXAMPLES["request_rotation_after_a_rotation"]
    assert {202, 409, 429} <= set(fuzz.statuses)
    fuzz.assert_no_issued_secret()


def test_fuzz_rotation_status(world, fuzz):
    finished = rotate_once(fuzz)
    _, queued = fuzz.send(Request("request_rotation", "POST", body=Json({"target": world.account, "force": True})))
    known = [finished, queued["id"]]

    @fuzz_settings(EXAMPLES["rotation_status"])
    @given(request=requests("rotation_status", world.account, known))
    def one(request):
        response, document = fuzz.send(request)
        if response.status_code == 200:
            assert request.route_id in known and document["id"] == request.route_id

    one()
    assert len(fuzz.bodies) > EXAMPLES["rotation_status"]
    assert {200, 404, 405} <= set(fuzz.statuses)
    fuzz.assert_no_issued_secret()


def test_fuzz_targets(world, fuzz):
    rotate_once(fuzz)

    @fuzz_settings(EXAMPLES["targets"])
    @given(request=requests("targets", world.account))
    def one(request):
        response, document = fuzz.send(request)
        if response.status_code == 200:
            (target,) = document["targets"]
            assert target["target"] == world.account and "error" not in target
            assert target["lastRotation"]["lastStatus"] == "succeeded"

    one()
    assert len(fuzz.bodies) > EXAMPLES["targets"]
    assert {200, 405} <= set(fuzz.statuses)
    fuzz.assert_no_issued_secret()


# Inputs the fuzz found, shrunk by hypothesis, kept so that each stays checked on its own.
FOUND = [
    pytest.param(Nested(depth=100_000, kind="array", inside="target"), id="nested-arrays-in-target"),
    pytest.param(Nested(depth=100_000, kind="object"), id="nested-objects"),
    pytest.param(BigNumber(digits=4301, inside="target"), id="4301-digit-target"),
    pytest.param(BigNumber(digits=4301), id="4301-digit-body"),
]


@pytest.mark.parametrize("body", FOUND)
def test_inputs_the_fuzz_found(fuzz, body):
    fuzz.send(Request("request_rotation", "POST", body=body))
