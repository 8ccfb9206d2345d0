"""OpenTelemetry traces: off by default, asked for by OTEL_* variables, one tree per request.

The traced app runs with the SDK's in-memory exporter, on each backend, with
real Redis (the cache) and a real upstream (link previews).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from blockbuster import blockbuster_ctx
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from servers.postgres import empty_database
from servers.processes import RedisServer

from asyncpress.app.main import create_app
from asyncpress.core import tracing
from asyncpress.core.config import Settings
from asyncpress.core.tracing import REQUEST_ID_ATTRIBUTE, Tracing, TracingMisconfigured
from tests.factories import create_article, register
from tests.support.app import make_settings
from tests.support.http import TLS
from tests.support.live import Served

# SQLite and PostgreSQL only: spans wrap statements the same way on every SQL backend.
pytestmark = pytest.mark.above_the_database


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    yield spans
    spans.shutdown()


@pytest.fixture
def traced_settings(database_url: str, redis_server: RedisServer) -> Settings:
    return make_settings(
        database_url, redis_url=redis_server.url, preview_allowed_hosts=("localhost",)
    )


@pytest.fixture
async def traced(
    traced_settings: Settings, exporter: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    await empty_database(traced_settings.database_url)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(traced_settings, Tracing(provider))
    # Tracing must add no blocking call on the event loop either.
    with blockbuster_ctx():
        async with (
            LifespanManager(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://asyncpress.test"
            ) as client,
        ):
            yield client


def _tree(
    spans: tuple[ReadableSpan, ...], request_id: str
) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The request's root span and every span below it, checked to hang from it."""
    (root,) = [s for s in spans if (s.attributes or {}).get(REQUEST_ID_ATTRIBUTE) == request_id]
    assert root.kind is SpanKind.SERVER
    assert root.parent is None
    assert root.context is not None
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    below = []
    for span in spans:
        assert span.context is not None
        if span is root or span.context.trace_id != root.context.trace_id:
            continue
        # Up the parents to the root, within this trace.
        up = span
        while up.parent is not None and up.parent.span_id != root.context.span_id:
            up = by_id[up.parent.span_id]
        assert up.parent is not None, span.name
        below.append(span)
    return root, below


def _sql(spans: list[ReadableSpan]) -> list[str]:
    return [
        str((s.attributes or {}).get("db.statement") or (s.attributes or {}).get("db.query.text"))
        for s in spans
        if s.kind is SpanKind.CLIENT
        and (s.attributes or {}).get("db.system") not in {None, "redis"}
    ]


def _redis(spans: list[ReadableSpan]) -> list[str]:
    return [s.name for s in spans if (s.attributes or {}).get("db.system") == "redis"]


def _outbound(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.kind is SpanKind.CLIENT and s.name.startswith("GET")]


async def test_a_request_gives_one_tree_of_its_queries_and_calls(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter, upstream: str
) -> None:
    ann = await register(traced, "ann")
    article = await create_article(traced, ann, title="Traced", tagList=["t"])
    exporter.clear()

    # A read: the driver-direct path on PostgreSQL reports its SQL too.
    response = await traced.get(
        f"/api/articles/{article['slug']}", headers={"X-Request-ID": "read-1", **ann.headers}
    )
    assert response.status_code == 200
    root, below = _tree(exporter.get_finished_spans(), "read-1")
    assert root.name == "GET /api/articles/{slug}"
    assert (root.attributes or {}).get(
        "http.status_code", (root.attributes or {}).get("http.response.status_code")
    ) == 200
    statements = _sql(below)
    assert any("FROM articles" in s for s in statements), statements

    # A link preview: its lookup, the upstream fetch and the stored row.
    exporter.clear()
    response = await traced.get(
        "/api/link-preview",
        params={"url": f"{upstream}/page?t=Traced"},
        headers={"X-Request-ID": "preview-1"},
    )
    assert response.status_code == 200
    _, below = _tree(exporter.get_finished_spans(), "preview-1")
    (fetched,) = _outbound(below)
    # To the address the SSRF check vetted (the name is resolved once, before).
    assert str((fetched.attributes or {})["http.url"]).endswith("/page?t=Traced")
    assert any("link_previews" in s for s in _sql(below))

    # Tags go through the cache, which is Redis here: a miss, the query, the store.
    exporter.clear()
    assert (await traced.get("/api/tags", headers={"X-Request-ID": "tags-1"})).status_code == 200
    _, below = _tree(exporter.get_finished_spans(), "tags-1")
    commands = _redis(below)
    assert commands, "no Redis span"
    assert commands[0].startswith("GET"), commands
    assert any(c.startswith("SET") for c in commands), commands
    assert _sql(below)


async def test_a_generated_request_id_is_on_the_root_span(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    response = await traced.get("/api/tags")
    request_id = response.headers["X-Request-ID"]
    root, _ = _tree(exporter.get_finished_spans(), request_id)
    assert root.name == "GET /api/tags"


async def test_a_trace_begun_upstream_continues(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    await traced.get(
        "/api/tags",
        headers={"traceparent": f"00-{trace_id}-{parent_id}-01", "X-Request-ID": "continued"},
    )
    (root,) = [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get(REQUEST_ID_ATTRIBUTE) == "continued"
    ]
    assert root.context is not None
    assert root.parent is not None
    assert f"{root.context.trace_id:032x}" == trace_id
    assert f"{root.parent.span_id:016x}" == parent_id


async def test_health_checks_and_scrapes_are_not_traced(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    for path in ("/api/health", "/metrics"):
        assert (await traced.get(path)).status_code == 200
    assert [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER] == []


class TestFromTheEnvironment:
    def test_off_unless_asked(self) -> None:
        assert tracing.provider_from_environment({}) is None
        assert tracing.provider_from_environment({"OTEL_TRACES_EXPORTER": "none"}) is None
        asked = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
        assert tracing.wanted(asked)
        assert not tracing.wanted({**asked, "OTEL_SDK_DISABLED": "true"})

    def test_asked_for_gives_a_provider_named_after_the_service(self) -> None:
        provider = tracing.provider_from_environment({"OTEL_TRACES_EXPORTER": "console"})
        assert provider is not None
        try:
            assert provider.resource.attributes["service.name"] == "asyncpress"
        finally:
            provider.shutdown()

    @pytest.mark.parametrize(
        ("environ", "said"),
        [
            ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER=zipkin is not supported"),
            (
                {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
                "use http/protobuf",
            ),
        ],
    )
    def test_what_cannot_be_done_is_said_in_one_line(
        self, environ: dict[str, str], said: str
    ) -> None:
        with pytest.raises(TracingMisconfigured, match=said) as raised:
            tracing.check(environ)
        assert "\n" not in str(raised.value)


def test_a_served_process_traces_when_the_environment_asks(
    migrated_sqlite: str, tmp_path: Path
) -> None:
    served = Served(
        migrated_sqlite,
        tmp_path,
        "traced",
        OTEL_TRACES_EXPORTER="console",
        OTEL_SERVICE_NAME="press-eu-1",
        OTEL_BSP_SCHEDULE_DELAY="50",  # milliseconds
    )
    try:
        response = httpx.get(
            f"{served.base}/api/tags", headers={"X-Request-ID": "env-1"}, verify=TLS, timeout=5
        )
        assert response.status_code == 200
        # The exporter runs in the SDK's thread, every 50 ms here.
        deadline = time.monotonic() + 10
        while "env-1" not in served.process.output() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        served.process.stop()
    output = served.process.output()
    assert '"asyncpress.request_id": "env-1"' in output
    assert '"service.name": "press-eu-1"' in output
    assert '"db.system": "sqlite"' in output
