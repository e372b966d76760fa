"""STAGE_ALLOWED_DOMAINS / STAGE_BLOCKED_DOMAINS: suffix matches on whole labels, clear errors
for bad entries, and where each list applies (search results, the loop's captures, operator
captures, the egress proxy for everything the browser loads)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from livestage.domains import DomainLists, normalize_domain
from livestage.egress import EgressPolicy, Refusal, Target
from livestage.settings import StageDomainSettings
from stage_producer.app import PAGES_DIR
from stage_producer.assets import AssetSigner, AssetStore
from stage_producer.backdrops.procedural import ProceduralBackdrops
from stage_producer.capture.browser import CaptureBrowser, CaptureOptions, CaptureRefused
from stage_producer.egress.proxy import EgressProxy
from stage_producer.planner import PlanSettings, RoomPlan
from stage_producer.producer import VisualFactory
from stage_producer.search.base import Source
from stage_producer.settings import StageSettings
from stage_producer.topics.base import TopicChoice
from tests.support.browser import chromium_path

from .conftest import FixedSearch

LISTS = DomainLists.of(allowed=["example.org", "*.Wiki.Example."], blocked=["bad.example.org"])


@pytest.mark.parametrize(
    ("url", "loop", "operator"),
    [
        ("https://example.org/", None, None),
        ("https://a.example.org/x", None, None),
        ("https://A.B.EXAMPLE.ORG./x", None, None),
        ("https://de.wiki.example/", None, None),
        ("https://badexample.org/", "not on the allowlist", None),
        ("https://example.org.evil.net/", "not on the allowlist", None),
        ("https://news.site/", "not on the allowlist", None),
        ("https://bad.example.org/", "on the blocklist (bad.example.org", "on the blocklist"),
        ("https://x.bad.example.org:8443/", "on the blocklist", "on the blocklist"),
        ("http://[::1]/", "not on the allowlist", None),
    ],
)
def test_lists_match_whole_labels_and_operators_bypass_only_the_allowlist(
    url: str, loop: str | None, operator: str | None
) -> None:
    for refusal, expected in [
        (LISTS.refusal(url), loop),
        (LISTS.refusal(url, operator=True), operator),
    ]:
        if expected is None:
            assert refusal is None, refusal
        else:
            assert refusal is not None and expected in refusal.reason, refusal


def test_empty_lists_change_nothing_and_entries_are_normalized() -> None:
    assert DomainLists().refusal("https://anything.example/") is None
    assert normalize_domain(" *.Bücher.DE. ") == "xn--bcher-kva.de"
    assert normalize_domain("[2001:DB8::1]") == "2001:db8::1"
    idn = DomainLists.of(blocked=["bücher.de"])
    assert idn.refusal("https://shop.xn--bcher-kva.de/") is not None


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("https://example.org/", "not a host name"),
        ("example.org/path", "not a host name"),
        ("", "empty domain"),
        ("a..b", "not a valid domain"),
    ],
)
def test_bad_entries_are_refused_naming_the_setting(entry: str, why: str) -> None:
    with pytest.raises(ValidationError, match=f"STAGE_BLOCKED_DOMAINS: .*{why}"):
        StageSettings(blocked_domains=[entry])


def test_the_egress_policy_refuses_blocked_hosts_for_every_request() -> None:
    policy = EgressPolicy(blocked_domains=("bad.example.org", "203.0.113.9"))
    refused = policy.check_url("https://cdn.bad.example.org/pic.png")
    assert isinstance(refused, Refusal) and "STAGE_BLOCKED_DOMAINS" in refused.reason
    # CONNECT lines too (https subresources, WebSockets), in any case
    assert isinstance(policy.check_authority("https", "BAD.example.org", 443), Refusal)
    assert isinstance(policy.check_authority("https", "notbad.example.org", 443), Target)
    assert isinstance(policy.check_url("https://8.8.8.8/"), Target)


@pytest.mark.browser
async def test_where_the_lists_apply_with_the_real_browser(test_site: str, tmp_path: Path) -> None:
    site = test_site.removeprefix("http://").split(":")[0]  # 127.0.0.1
    assert site == "127.0.0.1"
    proxy = await EgressProxy(
        EgressPolicy(allow_test_loopback=True, blocked_domains=("blocked.test",)),
        first_party_dir=PAGES_DIR,
    ).start()
    browser = CaptureBrowser(CaptureOptions(chromium_path=Path(chromium_path())), proxy)
    sources = [Source(f"http://blocked.test/{n}", "Blocked") for n in range(2)] + [
        Source("http://elsewhere.test/", "Not allowed"),
        Source(f"{test_site}/index.html"),
    ]

    def factory(lists: DomainLists) -> VisualFactory:
        return VisualFactory(
            browser=browser,
            backdrops=ProceduralBackdrops(),
            search=FixedSearch(sources),
            store=AssetStore(tmp_path, max_total_bytes=1 << 30, max_asset_bytes=1 << 24),
            signer=AssetSigner(b"test-asset-key-0123456789abcdef"),
            ttl_s=900,
            domains=lists,
        )

    try:
        allow_site = factory(DomainLists.of(allowed=[site], blocked=["blocked.test"]))
        choice = TopicChoice("Tea", "tea", 1.0)
        # Search results: the blocked and the unlisted ones are skipped; the allowed one shown.
        visual = await allow_site.for_topic("room-a", choice, RoomPlan(PlanSettings()))
        assert visual.kind == "screenshot" and visual.source_url == f"{test_site}/index.html"

        allow_other = factory(DomainLists.of(allowed=["example.org"], blocked=["blocked.test"]))
        # The loop's own capture of a page off the allowlist: refused, with the reason.
        with pytest.raises(CaptureRefused, match="not on the allowlist"):
            await allow_other.capture("room-a", f"{test_site}/index.html", operator=False)
        # An operator may show it...
        shown = await allow_other.capture("room-a", f"{test_site}/index.html")
        assert shown.title == "Local test page"
        # ...but never a blocked one, not even through a redirect from an allowed page:
        with pytest.raises(CaptureRefused, match="blocklist"):
            await allow_other.capture("room-a", "http://x.blocked.test/")
        with pytest.raises(CaptureRefused, match="blocklist"):
            await allow_other.capture("room-a", f"{test_site}/go/blocked.test/page")
        # The proxy itself refuses it, whoever asks the browser.
        with pytest.raises(CaptureRefused, match="STAGE_BLOCKED_DOMAINS"):
            await browser.screenshot(f"{test_site}/go/www.blocked.test/")
    finally:
        await browser.close()
        await proxy.close()


def test_the_producer_reads_the_same_settings_as_the_edge() -> None:
    """StageDomainSettings is what the edge checks an operator's capture URL against."""
    assert issubclass(StageSettings, StageDomainSettings)
    shared = set(StageDomainSettings.model_fields)
    assert shared == {
        "allowed_ports",
        "allowed_domains",
        "blocked_domains",
        "unsafe_allow_loopback_for_tests",
    }
    stage = StageSettings(blocked_domains=["*.Example.ORG."], allowed_ports=[443])
    assert (
        stage.egress_policy()
        == StageDomainSettings(blocked_domains=["example.org"], allowed_ports=[443]).egress_policy()
    )
