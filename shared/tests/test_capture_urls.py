"""`livestage.domains.capture_refusal`: what the edge can tell an operator about a capture URL
without DNS or a socket, from the stage producer's own rules and settings (`StageDomainSettings`,
which the producer's `StageSettings` extends). Pure: no network here."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from livestage.domains import ascii_url, capture_refusal
from livestage.egress import Refusal
from livestage.settings import StageDomainSettings

STAGE = StageDomainSettings.model_construct(
    allowed_ports=[80, 443],
    allowed_domains=["example.net"],
    blocked_domains=["example.org", "xn--bcher-kva.example", "203.0.113.9"],
    unsafe_allow_loopback_for_tests=False,
)


def refusal(url: str, stage: StageDomainSettings = STAGE) -> Refusal | None:
    return capture_refusal(url, stage.egress_policy(), stage.domain_lists())


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://example.org/", "host example.org is on the blocklist (example.org;"),
        ("https://deep.a.Example.ORG./x", "host deep.a.example.org is on the blocklist"),
        ("https://b\u00fccher.example/", "xn--bcher-kva.example is on the blocklist"),
        ("https://shop.xn--bcher-kva.example/", "on the blocklist"),
        ("http://203.0.113.9/", "203.0.113.9"),
        ("http://10.1.2.3/", "10.1.2.3 is private (10.0.0.0/8)"),
        ("http://0xa.1.2.3/", "10.1.2.3 is private"),
        ("http://[fd00::1]/", "unique local"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://169.254.169.254/", "link-local"),
        ("http://localhost:80/", "loopback"),
        ("https://example.net:22/", "port 22 is not allowed"),
        ("https://a:b@example.net/", "credentials"),
        ("ftp://example.net/", "scheme ftp: is not allowed"),
    ],
)
def test_what_the_producer_would_refuse_from_the_url_alone_is_refused_with_why(
    url: str, why: str
) -> None:
    result = refusal(url)
    assert result is not None and why in result.reason, result


@pytest.mark.parametrize(
    "url",
    [
        "https://badexample.org/",  # a lookalike is not under example.org
        "https://example.org.evil.test/",
        "https://elsewhere.example.com/",  # an operator is not held to the allowlist
        "https://no-such-name.invalid/",  # names are not resolved here: the producer decides
        "https://b\u00fccher.example.com/",
        "http://93.184.215.14:443/",
    ],
)
def test_public_urls_pass_and_the_allowlist_does_not_bind_an_operator(url: str) -> None:
    assert refusal(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://<b>x</b>.example/",
        "http://[<script>]/",
        "http://example.net:<script>/",
        "http://<img>.1/",
        "<script>://example.net/",
    ],
)
def test_a_refused_spelling_is_never_repeated_in_the_reason(url: str) -> None:
    result = refusal(url)
    assert result is not None
    assert "<" not in result.reason and "script" not in result.reason, result


def test_the_loopback_switch_opens_127_0_0_1_only_as_in_the_producer() -> None:
    loose = StageDomainSettings.model_construct(
        allowed_ports=[80, 443],
        allowed_domains=[],
        blocked_domains=[],
        unsafe_allow_loopback_for_tests=True,
    )
    assert refusal("http://127.0.0.1:8123/page", loose) is None
    assert refusal("http://127.0.0.2/", loose) is not None
    assert refusal("http://127.0.0.1:8123/page") is not None


def test_ascii_url_folds_only_an_internationalised_host() -> None:
    assert ascii_url("https://B\u00fccher.example:8443/p?q=\u00fc") == (
        "https://xn--bcher-kva.example:8443/p?q=\u00fc"
    )
    for unchanged in ("https://example.org/\u00fc", "https://u@b\u00fccher.example/", "x"):
        assert ascii_url(unchanged) == unchanged


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"blocked_domains": ["https://example.org/"]}, "STAGE_BLOCKED_DOMAINS: .*not a host"),
        ({"allowed_domains": [""]}, "STAGE_ALLOWED_DOMAINS: .*empty domain"),
        ({"allowed_ports": [443, 70000]}, "STAGE_ALLOWED_PORTS has ports outside"),
    ],
)
def test_bad_settings_name_the_variable(fields: dict[str, object], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        StageDomainSettings(**fields)  # type: ignore[arg-type]
