"""Pure request building and answer classification: no sockets."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

import leat_async as la
from leat_async._api.answers import classify, parse_rate_info, parse_retry_after
from leat_async._api.convert import data_parser, transaction_page, transaction_parser
from leat_async._api.wire import Request, check_base_url
from leat_async._http.outcomes import refused_before_processing

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
GET = Request("GET", "/giftcard-transactions", operation="list")


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> la.LeatError | None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return classify(status, headers or {}, raw, request=GET, now=NOW).error


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (1000, la.LeatInternalError),
        (1003, la.InvalidInputError),
        (1008, la.ShopNotFoundError),
        (5001, la.GiftcardNotFoundError),
        (5002, la.GiftcardExpiredError),
        (5003, la.InsufficientBalanceError),
        (5006, la.GiftcardNotIncrementableError),
        (5008, la.MaxAmountExceededError),
        (5010, la.TransactionNotFoundError),
        (55025, la.NotLastTransactionError),
    ],
)
def test_body_code_picks_the_class(code: int, cls: type[la.LeatAPIError]) -> None:
    err = answer(400, {"message": "Nederlands | English text.", "code": code, "status_code": 400})
    assert type(err) is cls
    assert err.code == code and err.status == 400
    assert str(err).startswith(f"English text. (code {code}, HTTP 400)")


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, la.AuthenticationError), (429, la.RateLimitedError), (503, la.ServiceUnavailableError)],
)
def test_status_decides_whatever_the_body_says(status: int, cls: type[la.LeatAPIError]) -> None:
    err = answer(status, {"message": "x", "code": 5003})
    assert type(err) is cls
    assert err.code == 5003


def test_unknown_code_is_a_plain_api_error_with_code() -> None:
    err = answer(400, {"message": "Iets | Something", "code": 7015})
    assert type(err) is la.LeatAPIError
    assert err.code == 7015
    assert "Something" in str(err) and "7015" in str(err)


def test_validation_errors_are_kept_and_shown() -> None:
    err = answer(400, {"message": "Invalid", "code": 1003, "errors": {"perPage": ["too big"]}})
    assert isinstance(err, la.InvalidInputError)
    assert err.errors == {"perPage": ["too big"]}
    assert "perPage: too big" in str(err)


def test_html_proxy_page_becomes_a_clear_api_error() -> None:
    err = answer(502, b"<html><body>Bad gateway</body></html>")
    assert type(err) is la.LeatAPIError
    assert err.status == 502 and err.code is None
    assert "HTTP 502" in str(err) and "Leat error body" in str(err)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"meta": []}', b""])
@pytest.mark.parametrize(
    "parse",
    [transaction_page, transaction_parser, data_parser(la.Giftcard)],
    ids=["page", "transaction", "giftcard"],
)
def test_a_200_without_data_is_refused_by_every_parser(
    body: bytes, parse: Callable[[bytes], object]
) -> None:
    answered = classify(200, {}, body, request=GET, now=NOW)
    assert answered.error is None and answered.body == body  # the parser's to judge
    with pytest.raises(ValueError, match=r"not JSON|no 'data' member"):
        parse(body)


def test_401_without_code() -> None:
    err = answer(401, {"message": "Unauthenticated."})
    assert isinstance(err, la.AuthenticationError)
    assert str(err).startswith("Unauthenticated. (HTTP 401)")


def test_429_reads_retry_after_then_reset() -> None:
    err = answer(429, {"message": "Too Many Attempts."}, {"Retry-After": "3"})
    assert isinstance(err, la.RateLimitedError) and err.retry_after == 3
    reset = str(int(NOW.timestamp()) + 7)
    err = answer(429, b"", {"X-RateLimit-Reset": reset})
    assert isinstance(err, la.RateLimitedError) and err.retry_after == 7


def test_error_names_the_request_but_never_headers() -> None:
    raw = json.dumps({"message": "no", "code": 5010}).encode()
    err = classify(400, {}, raw, request=Request("GET", "/giftcard-transactions/x"), now=NOW).error
    assert err is not None
    assert "[GET /giftcard-transactions/x]" in str(err)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("5", 5.0), ("0.5", 0.5), (" 2 ", 2.0), ("Fri, 02 Jan 2026 03:04:15 GMT", 10.0), ("-3", 0.0)],
)
def test_retry_after_forms(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize("value", [None, "soon", "nan", "inf", ""])
def test_retry_after_unusable(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_rate_headers() -> None:
    info = parse_rate_info({"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59"}, NOW)
    assert (info.limit, info.remaining, info.retry_after) == (60, 59, None)
    assert parse_rate_info({"X-RateLimit-Limit": "lots"}, NOW).limit is None


def test_plus_in_timestamps_is_percent_encoded() -> None:
    req = Request(
        "GET", "/giftcard-transactions", query=(("created_at[gte]", "2024-01-01T00:00:00+01:00"),)
    )
    url = req.url(URL("https://api.piggy.eu"))
    assert "%2B01:00" in url.raw_query_string or "%2B01%3A00" in url.raw_query_string
    assert "+" not in url.raw_query_string
    assert url.path == "/api/v3/oauth/clients/giftcard-transactions"
    assert url.query["created_at[gte]"] == "2024-01-01T00:00:00+01:00"


@given(
    base=st.sampled_from(["https://api.piggy.eu", "http://127.0.0.1:8080/prefix/"]),
    query=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=24)), max_size=6),
)
def test_request_urls_encode_queries_exactly_as_yarl_does(
    base: str, query: list[tuple[str, str]]
) -> None:
    # filters, codes and timestamps with '+', '&', '=', '%', spaces, non-ASCII: the server
    # gets exactly what yarl's own with_query would send
    url = Request("GET", "/giftcard-transactions", query=tuple(query)).url(URL(base))
    expected = URL(base).with_path(
        URL(base).path.rstrip("/") + "/api/v3/oauth/clients/giftcard-transactions"
    )
    expected = expected.with_query(query) if query else expected
    assert str(url) == str(expected)
    assert list(url.query.items()) == query


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://localhost",
        "http://[::1]:9",
        "http://127.3.2.1",
        "https://x.eu",
    ],
)
def test_base_url_allowed(url: str) -> None:
    assert check_base_url(url).host


@pytest.mark.parametrize(
    "url",
    [
        "http://api.piggy.eu",
        "http://10.0.0.1",
        "ftp://x",
        "",
        "https://u:p@x.eu",
        "https://x.eu/?a=1",
        "nohost",
    ],
)
def test_base_url_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"base_url|http"):
        check_base_url(url)


POST = Request("POST", "/giftcard-transactions", body={"amount_in_cents": -1}, operation="create")


@pytest.mark.parametrize(
    ("status", "body", "headers", "refused"),
    [
        (400, {"message": "Saldo | Insufficient", "code": 5003}, {}, True),
        # a 5xx is never proof, whatever it says: the server can fail after it charged
        (500, {"message": "Interne fout. | Internal error.", "code": 1000}, {}, False),
        (404, {"message": "Not found", "code": 5010}, {}, True),
        (503, {"message": "Onderhoud | Maintenance", "code": 1000}, {}, True),
        (500, {"message": "Server Error"}, {}, False),  # Laravel's generic page: no code
        (504, {"message": "Endpoint request timed out"}, {}, False),  # a gateway's JSON
        (502, {"message": "Bad gateway", "code": 1000}, {}, False),  # a gateway: never proof
        (401, {"message": "Unauthenticated."}, {}, True),
        (429, b"", {}, True),
        (503, b"<html>maintenance</html>", {"Retry-After": "30"}, True),
        (503, b"<html>down</html>", {}, False),
    ],
)
def test_what_proves_a_charge_was_not_processed(
    status: int, body: object, headers: dict[str, str], refused: bool
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    assert (
        refused_before_processing(classify(status, headers, raw, request=POST, now=NOW)) is refused
    )
