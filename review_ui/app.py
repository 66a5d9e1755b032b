"""The review UI application: one FastAPI app for the pages and the JSON API.

:func:`create_app` wires the pieces: Elasticsearch, server-side sessions, the single
authorisation dependency (applied app-wide, so no route can forget it), security
headers on every response, the template environment with gettext, and the routers.
Later pages (liaison cases, admin tools) add an ``APIRouter`` in :func:`create_app` and
their route names to :mod:`review_ui.permissions`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from harmwatch.documents import model_defaults
from harmwatch.search import es_client
from harmwatch.settings import Settings, get_settings
from review_ui import __version__
from review_ui.audit import AuditError
from review_ui.errors import Conflict, NotVisible, ReviewError
from review_ui.indices import ensure_ui_indices
from review_ui.media import UnsupportedMedia
from review_ui.rendering import render
from review_ui.security import Forbidden, LoginRequired, LoginThrottle, SessionStore, authorize

STATIC_DIR = Path(__file__).resolve().parent / "static"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # same-origin POSTs keep a real Origin header
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def secret_key(settings: Settings) -> str:
    """The configured UI secret, or one generated once into ``var/`` (mode 0600)."""
    if settings.ui_secret_key:
        return settings.ui_secret_key
    path = settings.var_dir / "ui-secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    model_defaults(settings)  # a broken model.json stops start-up, naming the file
    client = es_client(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(ensure_ui_indices, client, settings)
        yield
        client.close()

    app = FastAPI(
        title="harmwatch review API", version=__version__, lifespan=lifespan,
        dependencies=[Depends(authorize)], docs_url=None, redoc_url=None, openapi_url=None,
        description=(
            "JSON API of the harmwatch review UI. Authenticate by signing in at `/login` "
            "(the `hw_session` cookie); send the session's CSRF token (from `GET /api/me`) "
            "in the `X-CSRF-Token` header on every POST/PUT. See docs/review-ui.md."
        ),
    )
    app.state.settings = settings
    app.state.es = client
    app.state.sessions = SessionStore(client, settings, secret_key(settings))
    app.state.throttle = LoginThrottle(client, settings)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.get("/api/openapi.json", name="openapi", include_in_schema=False)(_openapi)

    from review_ui import admin, api, pages
    from review_ui.evidence import routes as evidence_routes

    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(admin.router)
    app.include_router(evidence_routes.router)  # liaison cases and evidence packs
    _install_handlers(app)
    app.middleware("http")(_security_headers)
    return app


def _openapi(request: Request) -> JSONResponse:
    """The API description, as an ordinary route behind :func:`authorize` (admins only).

    FastAPI's own ``openapi_url`` route skips the app's dependencies, so it would be public.
    """
    return JSONResponse(request.app.openapi())


async def _security_headers(request: Request,
                            call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Content-Security-Policy", CSP)
    # Pages show sensitive material: never stored. Assets: cached, revalidated by ETag.
    static = request.url.path.startswith("/static/")
    response.headers.setdefault("Cache-Control", "no-cache" if static else "no-store")
    return response


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    return render(request, "error.html", {"status": status, "message": message},
                  status_code=status)


def _install_handlers(app: FastAPI) -> None:
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": "not signed in"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    async def forbidden(request: Request, exc: Forbidden) -> Response:
        message = ("The form expired or came from elsewhere; reload the page and retry."
                   if exc.reason == "csrf" else "Your role may not do this.")
        return _error(request, 403, message)

    def simple(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(request: Request, exc: Exception) -> Response:
            return _error(request, status, str(exc) or "not found")
        return handler

    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": jsonable_errors(exc)}, status_code=422)
        return _error(request, 400, "The request was not understood.")

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(NotVisible, simple(404))
    app.add_exception_handler(Conflict, simple(409))
    app.add_exception_handler(ReviewError, simple(400))
    app.add_exception_handler(UnsupportedMedia, simple(415))
    app.add_exception_handler(AuditError, simple(503))
    app.add_exception_handler(RequestValidationError, invalid)


def jsonable_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    """Validation errors without the offending input echoed back (it may be hostile)."""
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()]
