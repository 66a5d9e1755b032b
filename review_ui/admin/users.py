"""User management: create, disable, reset passwords, assign roles, see last logins.

Every change goes through :mod:`review_ui.accounts` and is audited. Disabling an account,
changing its role or resetting its password ends its sessions, so the change holds from
the user's next request rather than at their next login. An admin cannot disable or
demote their own account: the last admin locking everyone out is not a recoverable
state from the UI.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from review_ui import accounts, i18n
from review_ui.admin.common import ctx, page, redirect
from review_ui.context import Ctx
from review_ui.errors import ReviewError

router = APIRouter()

Role = Literal["analyst", "liaison", "admin"]


def _guard_self(c: Ctx, username: str) -> None:
    if username == c.username:
        raise ReviewError("you cannot disable or demote your own account")


def _exists(c: Ctx, username: str) -> accounts.User:
    user = accounts.get_user(c.client, c.settings, username)
    if user is None:
        raise ReviewError(f"no user {username!r}")
    return user


def _refused(exc: accounts.AccountError) -> ReviewError:
    """The error to show: a refused password says why, in the admin's language."""
    if isinstance(exc, accounts.PasswordRejected):
        return ReviewError(exc.explain(i18n.gettext))
    return ReviewError(str(exc))


def create(c: Ctx, username: str, password: str, role: str, locale: str) -> accounts.User:
    try:
        user = accounts.create_user(c.client, c.settings, username.strip().lower(), password,
                                    role, locale=locale, created_by=c.username)
    except accounts.AccountError as exc:
        raise _refused(exc) from exc
    c.record("user_create", user.username, role=role, locale=locale)
    return user


def set_role(c: Ctx, username: str, role: str) -> None:
    old = _exists(c, username).role
    if role != "admin":
        _guard_self(c, username)
    accounts.update_user(c.client, c.settings, username, role=role)
    c.sessions.delete_for_user(username, keep=c.principal.session_id)
    c.record("user_role", username, old=old, new=role)


def set_disabled(c: Ctx, username: str, disabled: bool) -> None:
    _exists(c, username)
    if disabled:
        _guard_self(c, username)
    accounts.update_user(c.client, c.settings, username, disabled=disabled)
    if disabled:
        c.sessions.delete_for_user(username)
    c.record("user_disable" if disabled else "user_enable", username)


def reset_password(c: Ctx, username: str, password: str) -> None:
    _exists(c, username)
    try:
        accounts.set_password(c.client, c.settings, username, password)
    except accounts.AccountError as exc:
        raise _refused(exc) from exc
    c.sessions.delete_for_user(username, keep=c.principal.session_id)
    c.record("user_password_reset", username)


@router.get("/admin/users", name="admin_users", response_class=HTMLResponse)
def users_page(request: Request) -> Response:
    c = ctx(request)
    return page(request, "users.html", {
        "users": accounts.list_users(c.client, c.settings), "roles": accounts.ROLES,
        "done": request.query_params.get("done"), "min_password": accounts.MIN_PASSWORD_LENGTH,
    })


@router.post("/admin/users", name="admin_user_create")
def user_create(request: Request, username: Annotated[str, Form(max_length=63)],
                password: Annotated[str, Form(max_length=1000)], role: Annotated[Role, Form()],
                locale: Annotated[Literal["vi", "en"], Form()] = "vi") -> Response:
    user = create(ctx(request), username, password, role, locale)
    return redirect("/admin/users", done="created", name=user.username)


@router.post("/admin/users/{username}/role", name="admin_user_role")
def user_role(request: Request, username: str, role: Annotated[Role, Form()]) -> Response:
    set_role(ctx(request), username, role)
    return redirect("/admin/users", done="role changed", name=username)


@router.post("/admin/users/{username}/disable", name="admin_user_disable")
def user_disable(request: Request, username: str,
                 disabled: Annotated[bool, Form()] = True) -> Response:
    set_disabled(ctx(request), username, disabled)
    return redirect("/admin/users", done="disabled" if disabled else "enabled",
                    name=username)


@router.post("/admin/users/{username}/password", name="admin_user_password")
def user_password(request: Request, username: str,
                  password: Annotated[str, Form(max_length=1000)]) -> Response:
    reset_password(ctx(request), username, password)
    return redirect("/admin/users", done="password reset", name=username)


class UserIn(BaseModel):
    username: str = Field(max_length=63)
    password: str = Field(max_length=1000)
    role: Role
    locale: Literal["vi", "en"] = "vi"


class UserChange(BaseModel):
    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, max_length=1000)


def _public(user: accounts.User) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "disabled": user.disabled,
            "locale": user.locale, "last_login_at": user.last_login_at,
            "created_at": user.created_at}


@router.get("/api/admin/users", name="api_admin_users", tags=["admin"])
def api_users(request: Request) -> list[dict[str, Any]]:
    c = ctx(request)
    return [_public(u) for u in accounts.list_users(c.client, c.settings)]


@router.post("/api/admin/users", name="api_admin_user_create", status_code=201, tags=["admin"])
def api_create(request: Request, body: UserIn) -> dict[str, Any]:
    return _public(create(ctx(request), body.username, body.password, body.role, body.locale))


@router.put("/api/admin/users/{username}", name="api_admin_user_change", tags=["admin"])
def api_change(request: Request, username: str, body: UserChange) -> dict[str, Any]:
    """Change any of role, disabled and password; each change is its own audit record."""
    c = ctx(request)
    if body.role is not None:
        set_role(c, username, body.role)
    if body.disabled is not None:
        set_disabled(c, username, body.disabled)
    if body.password is not None:
        reset_password(c, username, body.password)
    return _public(_exists(c, username))
