"""Assets: stored once by content, pruned under a cap, and served only by signed, unexpired URL."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from stage_producer.assets import AssetSigner, AssetStore, AssetTooLarge
from stage_producer.server import AssetServer, create_asset_app

KEY = b"k" * 32


def test_assets_are_content_addressed(tmp_path: Path) -> None:
    store = AssetStore(tmp_path, max_total_bytes=10_000, max_asset_bytes=1000)
    first = store.put(b"hello", "jpg")
    again = store.put(b"hello", "jpg")
    assert first.name == again.name
    assert first.name == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824.jpg"
    assert first.path.read_bytes() == b"hello"
    assert store.get(first.name) == first
    assert store.get("../etc/passwd") is None
    assert store.get("0" * 64 + ".exe") is None
    with pytest.raises(AssetTooLarge, match="STAGE_ASSET_MAX_BYTES"):
        store.put(b"x" * 1001, "jpg")
    with pytest.raises(ValueError, match="unsupported asset type"):
        store.put(b"x", "html")


def test_the_folder_is_pruned_oldest_first(tmp_path: Path) -> None:
    store = AssetStore(tmp_path, max_total_bytes=250, max_asset_bytes=100)
    names = []
    for index in range(5):
        asset = store.put(bytes([index]) * 100, "png")
        os.utime(asset.path, (1000 + index, 1000 + index))
        names.append(asset.name)
    kept = {path.name for path in tmp_path.iterdir()}
    assert kept == set(names[-2:])


def test_signatures_cover_name_and_expiry() -> None:
    signer = AssetSigner(KEY)
    name = "a" * 64 + ".jpg"
    url = signer.url(name, 2_000_000_000)
    assert url.startswith(f"/media/{name}?exp=2000000000&sig=")
    sig = url.rsplit("sig=", 1)[1]
    now = 1_900_000_000
    assert signer.check(name, "2000000000", sig, now) is None
    assert signer.check(name, "2000000001", sig, now) == "bad signature"
    assert signer.check("b" * 64 + ".jpg", "2000000000", sig, now) == "bad signature"
    assert signer.check(name, "2000000000", sig, 2_000_000_000) == "expired URL"
    assert signer.check(name, None, sig, now) is not None
    assert AssetSigner(b"o" * 32).check(name, "2000000000", sig, now) == "bad signature"
    with pytest.raises(ValueError):
        AssetSigner(b"short")


@pytest.fixture
async def served(
    tmp_path: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, AssetStore, AssetSigner]]:
    store = AssetStore(tmp_path, max_total_bytes=1 << 30, max_asset_bytes=1 << 24)
    signer = AssetSigner(KEY)
    server = await AssetServer(create_asset_app(store, signer), "127.0.0.1", 0).start()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}", trust_env=False
    ) as client:
        yield client, store, signer
    await server.close()


async def test_a_valid_url_serves_the_asset_with_ranges(served) -> None:  # type: ignore[no-untyped-def]
    client, store, signer = served
    data = bytes(range(256)) * 100
    asset = store.put(data, "webm")
    url = signer.url(asset.name, int(time.time()) + 600)
    response = await client.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "video/webm"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "private" in response.headers["cache-control"]
    part = await client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]


@pytest.mark.parametrize("problem", ["tampered", "expired", "missing", "other-name", "no-exp"])
async def test_tampered_expired_or_missing_signatures_are_403(served, problem: str) -> None:  # type: ignore[no-untyped-def]
    client, store, signer = served
    asset = store.put(b"secret picture", "jpg")
    other = store.put(b"another picture", "jpg")
    good = signer.url(asset.name, int(time.time()) + 600)
    path, query = good.split("?")
    sig = query.split("sig=")[1]
    url = {
        "tampered": good[:-1] + ("0" if good[-1] != "0" else "1"),
        "expired": signer.url(asset.name, int(time.time()) - 1),
        "missing": path,
        "other-name": f"/media/{other.name}?{query}",
        "no-exp": f"{path}?sig={sig}",
    }[problem]
    response = await client.get(url)
    assert response.status_code == 403
    assert response.text.startswith("forbidden: ")
    assert b"picture" not in response.content


async def test_names_that_are_not_assets_are_404_before_any_check(served) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = served
    for path in ["/media/..%2F..%2Fetc%2Fpasswd", "/media/x.jpg", "/media/" + "a" * 64 + ".html"]:
        assert (await client.get(path)).status_code == 404
