"""GET /metrics: the Prometheus text format, for a token or an allowed address only.

Off (404) until `metrics.token` is set. The figures come from the collector in
appliance/metrics, which reads the server's own counters as the scrape runs.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector
from quart import Blueprint, Response, request

from appliance.metrics.access import allowed_networks, decide
from appliance.metrics.collect import DiskFigures, Sources, VitrineCollector
from appliance.services import Services
from appliance.views.web import client_address


def blueprint(svc: Services, sources: Sources) -> Blueprint:
    bp = Blueprint("metrics", __name__)
    settings = svc.config.metrics
    allow = allowed_networks(settings.allow)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(VitrineCollector(sources))
    ProcessCollector(registry=registry)

    @bp.get("/metrics")
    async def metrics() -> Response:
        status = decide(
            settings.token,
            allow,
            client_address(svc.config.server),
            request.headers.get("Authorization"),
        )
        if status == 404:
            return Response("Not found\n", status=404, content_type="text/plain")
        if status == 401:
            return Response(
                "A bearer token is needed (metrics.token)\n",
                status=401,
                content_type="text/plain",
                headers={"WWW-Authenticate": 'Bearer realm="vitrine metrics"'},
            )
        # The disk walk off the loop; the rest reads in-memory counters on it, where
        # they are never half-updated.
        sources.disk = await asyncio.to_thread(DiskFigures.read, svc.config.data_dir)
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    return bp
