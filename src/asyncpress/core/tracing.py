"""OpenTelemetry traces: off unless the standard ``OTEL_*`` variables ask for them.

Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``,
``console``; ``none`` is off) or, with that variable unset, when an OTLP
endpoint is given (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``). ``OTEL_SDK_DISABLED=true`` turns it
off whatever else is set. Everything else the SDK reads itself: the sampler
(``OTEL_TRACES_SAMPLER``), the resource (``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``), the exporter's endpoint, headers and timeout.

The SDK and the instrumentations are the ``tracing`` extra
(``pip install 'asyncpress[tracing]'``); nothing here imports them while
tracing is off. (FastAPI itself depends on the OpenTelemetry API: its own
telemetry is told to stay off then.)

What is traced: each HTTP request (its root span is FastAPI's own, made
with this provider, and carries the request's id), every SQL statement
(SQLAlchemy's, and the driver-direct reads of ``asyncpress.fast.rows``,
which report to the same listeners), the app's outbound HTTP calls (link
previews) and its Redis commands.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from asyncpress import __version__

if TYPE_CHECKING:
    import httpx
    from fastapi.telemetry import TelemetryConfig
    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy.ext.asyncio import AsyncEngine

EXTRA = "pip install 'asyncpress[tracing]'"
# Health checks and scrapes come every few seconds from machines; their
# spans would drown the requests of people.
NOT_TRACED = frozenset({"/api/health", "/metrics"})
FLUSH_TIMEOUT_MS = 3000
REQUEST_ID_ATTRIBUTE = "asyncpress.request_id"


def _not_traced(scope: Mapping[str, Any]) -> bool:
    return scope.get("path") in NOT_TRACED


class TracingMisconfigured(Exception):
    """The OTEL_* variables ask for something that cannot be done."""


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER")
    if exporters is not None:
        return any(name.strip().lower() not in {"", "none"} for name in exporters.split(","))
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The exporters asked for, checked; raises ``TracingMisconfigured``."""
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    names = [n for n in names if n not in {"", "none"}]
    for name in names:
        if name not in {"otlp", "console"}:
            raise TracingMisconfigured(
                f"OTEL_TRACES_EXPORTER={name} is not supported; use otlp, console or none"
            )
    protocol = environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    )
    if "otlp" in names and protocol != "http/protobuf":
        raise TracingMisconfigured(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported; "
            "use http/protobuf (a collector's port 4318)"
        )
    return names


def check(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether traces are asked for, once it is sure they can be made.

    Raises ``TracingMisconfigured`` with a one-line reason: the extra is not
    installed, or an exporter or protocol is one this build does not have.
    """
    if not wanted(environ):
        return False
    if importlib.util.find_spec("opentelemetry.sdk") is None:
        raise TracingMisconfigured(
            f"OTEL_* variables ask for traces, but OpenTelemetry is not installed: {EXTRA}"
        )
    _exporter_names(environ)
    return True


def provider_from_environment(environ: Mapping[str, str] = os.environ) -> TracerProvider | None:
    """The tracer provider the environment asks for, or None when tracing is off."""
    if not check(environ):
        return None
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    attributes: dict[str, str] = {"service.version": __version__}
    named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    if not named:
        attributes["service.name"] = "asyncpress"
    # The sampler comes from OTEL_TRACES_SAMPLER, read by the provider itself.
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in _exporter_names(environ):
        exporter: SpanExporter
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )

            exporter = OTLPSpanExporter()  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*
        else:
            exporter = ConsoleSpanExporter()
        # Batched, in the SDK's own thread: exporting never runs on the event loop.
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class Tracing:
    """The app's tracing: what to instrument, with which provider.

    ``Tracing(None)`` is tracing off: every method does nothing.
    """

    def __init__(self, provider: TracerProvider | None) -> None:
        self.provider = provider
        self._redis_instrumented = False
        if provider is not None:
            # Imported now, when the app is built: the lifespan runs on the
            # event loop, where reading modules from disk would block it.
            for module in (
                "opentelemetry.instrumentation.httpx",
                "opentelemetry.instrumentation.redis",
                "opentelemetry.instrumentation.sqlalchemy.engine",
                "opentelemetry.metrics",
            ):
                importlib.import_module(module)

    def fastapi_telemetry(self) -> TelemetryConfig:
        """``FastAPI(telemetry=...)``: the framework's own request spans.

        FastAPI makes the root span of each request itself (and spans for
        its dependencies, endpoint and serialisation below it) with the
        provider given here. Its metrics and logs are off: /metrics and the
        JSON logs carry those. Off entirely when tracing is off, so a request
        does not even look for a configured provider.
        """
        if self.provider is None:
            return {"tracing": False, "metrics": False, "logs": False}
        return {
            "tracer_provider": self.provider,
            "metrics": False,
            "logs": False,
            "exclude": _not_traced,
        }

    def request_id_tagger(self) -> Callable[[str], None] | None:
        """What puts a request's id on its root span (None when off)."""
        if self.provider is None:
            return None
        from opentelemetry import trace  # noqa: PLC0415

        def tag(request_id: str) -> None:
            trace.get_current_span().set_attribute(REQUEST_ID_ATTRIBUTE, request_id)

        return tag

    def engine(self, engine: AsyncEngine) -> None:
        if self.provider is None:
            return
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer  # noqa: PLC0415
        from opentelemetry.metrics import NoOpMeterProvider  # noqa: PLC0415

        # The engine's own listeners, not SQLAlchemyInstrumentor().instrument():
        # that one is once per process and also wraps every create_engine.
        # Connection counts are /metrics' (asyncpress_db_pool_*), not traces'.
        unused = NoOpMeterProvider().get_meter(__name__).create_up_down_counter("connections")
        EngineTracer(  # type: ignore[no-untyped-call]
            self.provider.get_tracer("asyncpress.sql"), engine.sync_engine, unused
        )

    def http_client(self, client: httpx.AsyncClient) -> None:
        if self.provider is None:
            return
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor  # noqa: PLC0415

        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def start_redis(self) -> None:
        """Redis commands, from every client of this process, until ``stop``."""
        if self.provider is None or self._redis_instrumented:
            return
        from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415

        # skip_dep_check: the check reads package metadata from disk, on the loop.
        RedisInstrumentor().instrument(tracer_provider=self.provider, skip_dep_check=True)
        self._redis_instrumented = True

    def stop(self) -> None:
        """Undo the process-wide instrumentation and send the spans still held."""
        if self.provider is None:
            return
        if self._redis_instrumented:
            from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415

            RedisInstrumentor().uninstrument()
            self._redis_instrumented = False
        # Bounded: a collector that does not answer must not hold up a stop.
        self.provider.force_flush(timeout_millis=FLUSH_TIMEOUT_MS)
