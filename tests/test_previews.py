"""Link previews: a real upstream on 127.0.0.1, and SSRF refusals of every kind."""

from __future__ import annotations

import asyncio
import ipaddress

import httpx
import pytest
from fastapi import FastAPI
from servers.postgres import free_port

from asyncpress.core.config import Settings
from asyncpress.previews.fetch import Fetcher
from asyncpress.previews.service import Previews, links_in
from asyncpress.previews.ssrf import Refused, is_public, vet
from tests.factories import create_article, register
from tests.support.app import make_settings, row_count, wired
from tests.support.http import TLS


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        preview_allowed_hosts=("localhost",),
        preview_timeout_s=1.0,
        preview_deadline_s=2.0,
    )


async def _preview(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return await client.get("/api/link-preview", params={"url": url})


class TestLinkPreview:
    async def test_open_graph_fields(self, client: httpx.AsyncClient, upstream: str) -> None:
        response = await _preview(client, f"{upstream}/page?t=Knights")
        assert response.status_code == 200
        assert response.json() == {
            "preview": {
                "url": f"{upstream}/page?t=Knights",
                "title": "Knights",
                "description": "A page about Knights.",
                "image": f"{upstream}/img/Knights.png",
                "siteName": "Upstream",
            }
        }

    async def test_title_fallback(self, client: httpx.AsyncClient, upstream: str) -> None:
        preview = (await _preview(client, f"{upstream}/title-only")).json()["preview"]
        assert preview["title"] == "Only a title"
        assert preview["description"] is None

    async def test_stored_and_reused(
        self, client: httpx.AsyncClient, app: FastAPI, upstream: str
    ) -> None:
        url = f"{upstream}/page?t=Stored"
        async with httpx.AsyncClient(verify=TLS) as direct:
            before = (await direct.get(f"{upstream}/hits")).json().get("/page", 0)
            for _ in range(3):
                assert (await _preview(client, url)).status_code == 200
            after = (await direct.get(f"{upstream}/hits")).json().get("/page", 0)
        assert after - before == 1
        assert await row_count(app, "link_previews") == 1

    async def test_slow_upstream_is_504_within_the_deadline(
        self, client: httpx.AsyncClient, upstream: str
    ) -> None:
        async with asyncio.timeout(10):  # bounds the test itself, generously
            response = await _preview(client, f"{upstream}/slow")
        assert response.status_code == 504
        assert "url" in response.json()["errors"]

    async def test_huge_page_is_read_only_so_far(
        self, client: httpx.AsyncClient, upstream: str
    ) -> None:
        async with asyncio.timeout(10):
            response = await _preview(client, f"{upstream}/huge")
        assert response.status_code == 200
        assert response.json()["preview"]["title"] == "Huge page"

    @pytest.mark.parametrize(
        ("path", "status"),
        [("/json", 422), ("/error", 502), ("/chain?n=6", 502)],
    )
    async def test_unusable_upstreams(
        self, client: httpx.AsyncClient, upstream: str, path: str, status: int
    ) -> None:
        response = await _preview(client, f"{upstream}{path}")
        assert response.status_code == status
        assert list(response.json()["errors"]) == ["url"]

    async def test_a_short_redirect_chain_is_followed(
        self, client: httpx.AsyncClient, upstream: str
    ) -> None:
        response = await _preview(client, f"{upstream}/chain?n=2")
        assert response.json()["preview"]["title"] == "End of chain"

    async def test_unreachable_is_502(self, client: httpx.AsyncClient) -> None:
        response = await _preview(client, f"http://localhost:{free_port()}/")
        assert response.status_code == 502

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://localhost/file",
            "file:///etc/passwd",
            "http://127.0.0.1/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://[::1",
            "http://[::1]:99999/",
            "http://localhost:99999/",
            "http://localhost:0/",
            "http://no-such-host.invalid/",
            f"http://{'a' * 64}.example/",
            "http://xn--a.example/",
            "http://ex ample.com/",
            "http://[2002:7f00:1::]/",
            "http://[2002:a9fe:a9fe::]/latest/meta-data/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "http://",
        ],
    )
    async def test_refused_urls_are_422(self, client: httpx.AsyncClient, url: str) -> None:
        response = await _preview(client, url)
        assert response.status_code == 422
        assert list(response.json()["errors"]) == ["url"]

    async def test_a_redirect_to_loopback_is_refused(
        self, client: httpx.AsyncClient, upstream: str
    ) -> None:
        port = upstream.rsplit(":", 1)[1]
        target = f"http://127.0.0.1:{port}/page"  # the same server, by address: not allowed
        response = await _preview(client, f"{upstream}/redirect?to={target}")
        assert response.status_code == 422
        assert "non-public" in response.json()["errors"]["url"][0]


class TestArticlePreviews:
    async def test_previews_of_the_links_in_the_body(
        self, client: httpx.AsyncClient, app: FastAPI, upstream: str
    ) -> None:
        alice = await register(client)
        body = (
            f"See {upstream}/page?t=One and ({upstream}/page?t=Two), again {upstream}/page?t=One."
            " Not http://10.0.0.7/secret though."
        )
        slug = (await create_article(client, alice, body=body))["slug"]
        response = await client.get(f"/api/articles/{slug}/previews")
        assert response.status_code == 200
        assert [p["title"] for p in response.json()["previews"]] == ["One", "Two"]
        assert response.json()["failed"] == [
            {
                "url": "http://10.0.0.7/secret",
                "status": 422,
                "error": response.json()["failed"][0]["error"],
            }
        ]
        assert (await client.get("/api/articles/nope/previews")).status_code == 404

    async def test_bad_links_each_get_an_error_and_good_ones_are_still_previewed(
        self, client: httpx.AsyncClient, app: FastAPI, upstream: str
    ) -> None:
        alice = await register(client)
        bad = [
            "http://[::1]/",
            "http://no-such-host.invalid/",
            "http://localhost:99999/",
            f"http://{'a' * 64}.example/",
            "http://xn--a.example/",
            "http://[2002:7f00:1::]/",
        ]
        body = f"[Good]({upstream}/page?t=Good) then " + " and ".join(bad) + " [http://[::1]"
        slug = (await create_article(client, alice, body=body))["slug"]
        for _ in range(2):  # and again, once the good one is stored
            response = await client.get(f"/api/articles/{slug}/previews")
            assert response.status_code == 200, response.text
            payload = response.json()
            assert [p["title"] for p in payload["previews"]] == ["Good"]
            failed = {f["url"]: f["status"] for f in payload["failed"]}
            assert set(failed) == {*bad, "http://[::1]"}
            assert set(failed.values()) == {422}

    async def test_the_warm_up_after_a_create_survives_bad_links(
        self, client: httpx.AsyncClient, app: FastAPI, upstream: str
    ) -> None:
        previews = wired(app, Previews)
        await previews.warm(f"http://[::1 http://a:99999/ {upstream}/page?t=Warm")
        assert await row_count(app, "link_previews") == 1

    async def test_concurrent_fetches_of_the_same_links_do_not_conflict(
        self, app: FastAPI, upstream: str
    ) -> None:
        # A background warm-up and readers may store the same URLs at once; the
        # rows are written in one order, so concurrent upserts cannot deadlock.
        urls = [f"{upstream}/page?t=same{n}" for n in range(10)]
        previews = wired(app, Previews)
        results = await asyncio.gather(*(previews.many(urls) for _ in range(4)))
        assert [(len(found), failed) for found, failed in results] == [(10, [])] * 4
        assert await row_count(app, "link_previews") == 10

    def test_a_bracketed_host_is_one_link_and_markdown_brackets_are_not(self) -> None:
        text = "[see](http://[2001:db8::1]:8080/x) and [http://plain.example/a]."
        assert links_in(text) == ["http://[2001:db8::1]:8080/x", "http://plain.example/a"]

    async def test_links_are_capped_at_twenty(self) -> None:
        text = " ".join(f"https://site{n}.example/" for n in range(30))
        assert len(links_in(text)) == 20


REFUSED = [
    "127.0.0.1",
    "127.1.2.3",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 - an address to refuse, not to bind
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::127.0.0.1",
    "2001:db8::1",
    "2002:7f00:1::",  # 6to4 wrapping 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 wrapping 169.254.169.254
    "2002:0a00:0001::",  # 6to4 wrapping 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 wrapping 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 wrapping 169.254.169.254
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]


class TestAddressVetting:
    @pytest.mark.parametrize("address", REFUSED)
    def test_non_public_addresses_are_refused(self, address: str) -> None:
        assert not is_public(ipaddress.ip_address(address))
        with pytest.raises(Refused):
            vet("host.example", [address])

    @pytest.mark.parametrize(
        "address",
        [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "2002:5db8:d822::1",
            "64:ff9b::101:101",
        ],
    )
    def test_public_addresses_pass(self, address: str) -> None:
        assert vet("host.example", [address]) == address

    async def test_a_host_with_one_private_address_among_public_ones_is_refused(self) -> None:
        async def two_addresses(_host: str, _port: int) -> list[str]:
            return ["93.184.216.34", "10.0.0.1"]

        async with httpx.AsyncClient(verify=TLS) as http:
            fetcher = Fetcher(http, deadline_s=2, resolver=two_addresses)
            with pytest.raises(Refused, match=r"10\.0\.0\.1"):
                await fetcher.preview("http://two-faced.example/")
