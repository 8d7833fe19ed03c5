"""The app factory: builds the services and hands them to the blueprints.

No module holds live state: everything a request needs hangs off the app made here,
so tests can build as many independent apps as they like.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from quart import Quart, Response, g, redirect, request, session
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, RequestRedirect
from werkzeug.routing.converters import IntegerConverter

from appliance.accounts.security import SlidingWindowLimiter, new_token
from appliance.accounts.sessions import COOKIE_KEY, prune, signed_in_user
from appliance.backups.schedule import BackupSchedule
from appliance.catalog.products import show_link
from appliance.catalog.shop import get_meta, set_meta
from appliance.config import Config
from appliance.embed.origins import embeddable_csp
from appliance.engagement.service import EngagementService
from appliance.engagement.store import EngagementStore
from appliance.hls.urls import cdn_origin
from appliance.i18n import locales
from appliance.i18n.translate import _, ngettext_form
from appliance.kpis.events import EventLog
from appliance.live.bridge import LiveShows
from appliance.live.guest_stage import Guests
from appliance.metrics.collect import Sources
from appliance.paths import STATIC_DIR, TEMPLATES_DIR
from appliance.reminders.service import Reminders
from appliance.replays.store import ReplayStore
from appliance.room.handlers import RoomService
from appliance.room.store import RoomStore
from appliance.services import Services
from appliance.storage import db as dbmod
from appliance.storage.uploads import UploadStore
from appliance.views.admin import auth, offer_codes, studio
from appliance.views.admin import guest as studio_guest
from appliance.views.admin import kpis as admin_kpis
from appliance.views.admin import products as admin_products
from appliance.views.admin import replays as admin_replays
from appliance.views.admin import settings as admin_settings
from appliance.views.admin import shows as admin_shows
from appliance.views.admin import users as admin_users
from appliance.views.api import cart as cart_api
from appliance.views.api import conversions as conversions_api
from appliance.views.api import events as kpi_events
from appliance.views.api import feed as room_feed
from appliance.views.api import guest as guest_http
from appliance.views.api import hls as hls_http
from appliance.views.api import hls_start
from appliance.views.api import media as media_http
from appliance.views.api import metrics as metrics_api
from appliance.views.api import room as room_ws
from appliance.views.public import embed as public_embed
from appliance.views.public import guest as guest_page
from appliance.views.public import pages as public
from appliance.views.public import reminders as public_reminders
from appliance.views.public import replays as replay_files
from appliance.views.web import csrf_ok, csrf_token, current_user, render

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)
SQLITE_MAX_INT = 2**63 - 1


class SqliteInt(IntegerConverter):
    """`<int:...>` in every route: a number SQLite can hold. A larger id is a 404 at
    routing, never an OverflowError in a query."""

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = SQLITE_MAX_INT,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits, min, max, signed)


# Scripts and styles change with each upgrade and import each other: always revalidated.
REVALIDATED_STATIC = ("/static/js/", "/static/css/")
# Paths whose POSTs carry their own authentication instead of a form's CSRF token.
CSRF_EXEMPT_PREFIXES = ("/whip/", "/whep/", "/api/")


def with_cdn(policy: str, origin: str) -> str:
    """The pages' CSP, letting the player read the HLS rendition from `origin` (the CDN
    of media.hls_base_url) too."""
    if not origin:
        return policy
    return policy.replace("media-src 'self' blob:", f"media-src 'self' blob: {origin}").replace(
        "connect-src 'self'", f"connect-src 'self' {origin}"
    )


def create_app(config: Config) -> Quart:
    data_dir = config.data_dir
    database = dbmod.Database(data_dir / "vitrine.sqlite3")
    services = Services(
        config=config,
        db=database,
        uploads=UploadStore(
            data_dir / "uploads", config.limits.max_image_bytes, config.limits.max_image_pixels
        ),
        translations=locales.load_catalogues(),
        login_limiter=SlidingWindowLimiter(
            config.limits.login_attempts, config.limits.login_window_seconds
        ),
        setup_token=new_token(),
        replays=ReplayStore(database, data_dir),
    )

    app = Quart(
        "vitrine",
        template_folder=str(TEMPLATES_DIR),
        static_folder=str(STATIC_DIR),
        static_url_path="/static",
    )
    app.url_map.converters["int"] = SqliteInt  # before any route is added

    async def static_file(filename: str) -> Response:
        try:
            return await app.send_static_file(filename)
        except OSError:  # a name the file system refuses (too long...): no such file
            raise NotFound() from None

    app.view_functions["static"] = static_file
    app.config.update(
        MAX_CONTENT_LENGTH=config.limits.max_form_bytes,
        SESSION_COOKIE_NAME="vitrine_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.https,
        PERMANENT_SESSION_LIFETIME=timedelta(days=14),
        SEND_FILE_MAX_AGE_DEFAULT=timedelta(hours=1),
        TEMPLATES_AUTO_RELOAD=False,
    )
    live = LiveShows(config, database, services.replays)
    room_store = RoomStore(database)
    event_log = EventLog(database)
    engagement_store = EngagementStore(database, config.engagement.contact_days)
    rooms = RoomService(
        database,
        room_store,
        services.shop,
        event_log,
        services.uploads.viewer_name,
        EngagementService(engagement_store, room_store.action, event_log),
    )
    live.status_listeners.append(rooms.show_status)
    # A guest on the live: their own relay; the stage's changes go to the show's room.
    guests = Guests(database, live, config.engagement.guest_link_hours)

    def to_room(show_id: int, message: dict[str, Any]) -> None:
        room = rooms.hub.rooms.get(show_id)
        if room is not None:
            room.broadcast(message)

    guests.listeners.append(to_room)
    app.extensions["vitrine.guests"] = guests
    # Emails and the notify webhook: queued when a show goes live, never awaited by it.
    reminders = Reminders(config, database, services.translations, services.shop)
    live.status_listeners.append(reminders.status_changed)
    app.extensions["vitrine.reminders"] = reminders
    app.extensions["vitrine"] = services
    app.extensions["vitrine.live"] = live
    app.extensions["vitrine.rooms"] = rooms
    app.extensions["vitrine.events"] = event_log
    # What /metrics and the admin home read; scheduled backups (off unless configured).
    sources = Sources(
        plane=live.plane,
        guest_plane=guests.plane,
        rooms=rooms.hub,
        events=event_log,
        data_dir=data_dir,
        hls=services.hls_admission,
    )
    app.extensions["vitrine.metrics"] = sources
    backups = BackupSchedule(
        database,
        data_dir,
        config.backup.every_hours,
        config.backup.keep,
        config.backup.folder,
        config.backup.after_command,
    )
    app.extensions["vitrine.backups"] = backups
    _setup_templates(app, services)

    @app.before_serving
    async def open_store() -> None:
        # Migrations run synchronously before the first request: nothing else is
        # waiting yet, and a failure must stop the start.
        dbmod.warn_loose_permissions(data_dir)
        dbmod.migrate_sync(database.path, data_dir / "backups")
        await database.open()
        await prune(database)
        secret = await get_meta(database, "secret_key")
        if secret is None:
            secret = new_token()
            await set_meta(database, "secret_key", secret)
        app.secret_key = secret
        await room_store.start()
        await engagement_store.start()
        await event_log.start()
        await rooms.hub.start()
        await live.start()
        await guests.start()
        await reminders.start()
        await backups.start()

    async def begin_shutdown() -> None:
        """The server is stopping (SIGTERM): called before Hypercorn stops listening and
        waits for open connections to end. Every WHIP and WHEP session ends and the
        recordings are closed; then room sockets are closed with 1001, last, so that
        pages reconnecting (after a back-off of a second or more) find the restarted
        server, not this one. Nothing is left for Hypercorn's wait; the chat and event
        buffers are written by after_serving, which follows at once."""
        log.info("stopping: closing media sessions and room sockets")
        await guests.close()
        await live.close()
        await rooms.hub.close()

    app.extensions["vitrine.begin_shutdown"] = begin_shutdown

    @app.after_serving
    async def close_store() -> None:
        await backups.close()  # a copy under way is left to its thread; the next one is not
        await guests.close()
        await live.close()  # again: a no-op after begin_shutdown, the whole work without
        await rooms.hub.close()
        await room_store.close()
        await engagement_store.close()
        await event_log.close()
        await reminders.close()
        await database.close()

    @app.before_request
    async def prepare_request() -> Response | None:
        g.started = time.perf_counter()
        shop = await services.shop()
        g.shop = shop
        g.lang = locales.pick_language(request.headers.get("Accept-Language"), shop.language)
        g.translations = services.translations.get(g.lang, services.translations["en"])
        g.user = await signed_in_user(database, session)
        if g.user is None and (COOKIE_KEY in session or "user_id" in session):
            session.clear()  # ended, expired, or a cookie from before server-side sessions
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and not request.path.startswith(
            CSRF_EXEMPT_PREFIXES
        ):
            form = await request.form
            if not csrf_ok(form):
                body, status = await render(
                    "error.html",
                    400,
                    title=_("This form has expired"),
                    message=_("Go back, reload the page and submit it again."),
                )
                return Response(body, status=status)
        return None

    @app.after_request
    async def count_request(response: Response) -> Response:
        sources.requests.count(request.path, request.url_rule is not None, response.status_code)
        return response

    csp = with_cdn(CSP, cdn_origin(config.media.hls_base_url))

    @app.after_request
    async def security_headers(response: Response) -> Response:
        h = response.headers
        framers: tuple[str, ...] = ()
        if request.endpoint in public_embed.EMBEDDABLE_ENDPOINTS and "shop" in g:
            framers = public_embed.embed_origins(services)
        if framers:
            # The player may be framed by the shop's site (docs/embed.md): frame-ancestors
            # lists its origins; X-Frame-Options cannot, so it is left out there.
            h.setdefault("Content-Security-Policy", embeddable_csp(csp, framers))
        else:
            h.setdefault("X-Frame-Options", "SAMEORIGIN")
        h.setdefault("Content-Security-Policy", csp)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if current_user() is not None:
            h.setdefault("Cache-Control", "no-store")
        if request.path.startswith(REVALIDATED_STATIC):
            # Modules import each other: after an upgrade a browser must not mix cached old
            # modules with new ones, so it asks again each time (a 304 when unchanged).
            h["Cache-Control"] = "no-cache"
        h.setdefault("Vary", "Accept-Language, Cookie")
        if "started" in g:
            h["Server-Timing"] = f"app;dur={(time.perf_counter() - g.started) * 1000:.2f}"
        return response

    @app.after_request
    async def same_host_redirects(response: Response) -> Response:
        # Routing's own redirects (`//` merged, a missing trailing slash) are absolute
        # URLs built from the Host header the client sent: answer with the path alone,
        # so a forged Host never sends a browser to another site.
        if isinstance(request.routing_exception, RequestRedirect):
            parts = urlsplit(request.routing_exception.new_url)
            path = "/" + parts.path.lstrip("/")
            response.headers["Location"] = path + (f"?{parts.query}" if parts.query else "")
        return response

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Any:
        if exc.response is not None:  # abort(Response): already the answer
            return exc.response
        code = exc.code or 500
        if code == 401 and request.method == "GET":
            # The whole path and query as one `next` value (`&` kept, not split off).
            return redirect(f"/login?next={quote(request.full_path.rstrip('?'), safe='/')}")
        titles = {
            400: _("That request was not understood"),
            401: _("Please sign in"),
            403: _("You do not have access to this page"),
            404: _("Page not found"),
            405: _("That action is not allowed here"),
            409: _("That cannot be done while the show is in this state"),
            413: _("That upload is too large"),
            429: _("Too many attempts"),
        }
        body, _status = await render(
            "error.html", code, title=titles.get(code, _("Something went wrong")), message=""
        )
        return Response(body, status=code, headers=getattr(exc, "headers", None) or None)

    for make in (
        public.blueprint,
        public_embed.blueprint,
        replay_files.blueprint,
        admin_replays.blueprint,
        auth.blueprint,
        admin_products.blueprint,
        admin_users.blueprint,
        admin_settings.blueprint,
        admin_kpis.blueprint,
        conversions_api.blueprint,
        cart_api.blueprint,
        offer_codes.blueprint,
    ):
        app.register_blueprint(make(services))
    for make_live in (
        admin_shows.blueprint,
        media_http.blueprint,
        hls_http.blueprint,
        hls_start.blueprint,
        studio.blueprint,
    ):
        app.register_blueprint(make_live(services, live))
    app.register_blueprint(room_feed.blueprint(services, rooms))
    app.register_blueprint(guest_page.blueprint(services))
    app.register_blueprint(guest_http.blueprint(services, guests))
    app.register_blueprint(studio_guest.blueprint(services, guests))
    app.register_blueprint(
        hls_http.blueprint(services, live, guests.plane, "/hls/<int:show_id>/guest", "hls_guest")
    )
    room_ws.install(app, services, rooms)
    hls_http.install(app, services)  # outermost: sheds HLS load before anything
    app.register_blueprint(kpi_events.blueprint(services, event_log))
    app.register_blueprint(metrics_api.blueprint(services, sources))
    app.register_blueprint(public_reminders.blueprint(services, reminders))
    return app


def _setup_templates(app: Quart, services: Services) -> None:
    env = app.jinja_env
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda s, **kw: _(s, **kw), lambda s, p, n, **kw: ngettext_form(s, p, n), newstyle=True
    )

    def money(minor: int, currency: str) -> str:
        return locales.format_money(minor, currency, g.lang)

    def when(ts: int, fmt: str = "medium") -> str:
        return locales.format_when(ts, g.shop.timezone, g.lang, fmt)

    def day(ts: int) -> str:
        return locales.format_date(ts, g.shop.timezone, g.lang)

    def clock(ts: int) -> str:
        return locales.format_time(ts, g.shop.timezone, g.lang)

    def duration(seconds: float | None) -> str:
        """1:05 or 1:02:03, as video players show times."""
        total = max(0, int(seconds or 0))
        h, rest = divmod(total, 3600)
        m, s = divmod(rest, 60)
        return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"

    env.globals["csrf_token"] = csrf_token  # globals reach imported macros too
    env.filters.update(
        money=money,
        when=when,
        day=day,
        clock=clock,
        duration=duration,
        pair=lambda v: (v, v),
        show_link=show_link,
        viewer_image=services.uploads.viewer_name,  # the resized copy, where there is one
    )

    @app.context_processor
    async def common() -> dict[str, Any]:
        return {
            "shop": g.get("shop"),
            "lang": g.get("lang", "en"),
            "user": current_user(),
            "base_url": services.config.base_url,
        }
