"""Server-rendered pages for province and commune officers (Vietnamese first, English on a switch).

``WebPlugin`` adds them to the litestar app: the page routes under ``/``, the Jinja2 template engine
(templates in ``server/web/templates``) and the stylesheet and script under ``/static`` (served from
this package; no CDN, no front-end build). Pages: log in/out, overview, indicators, the review queue,
submissions (list, detail, review), rounds and forms, collectors and QR codes, Excel exports, plugins
and the plans they carry, officer accounts and password-reset links, the QĐ 28 assessment
and its sign-off (``pages_assessment``), the Decree 105 monthly management lists (``pages_management``),
persons under management on the entity list with their history and monthly visits (``pages_persons``).
Every page is cut to the officer's units by ``core.scope``.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from litestar import Router, get
from litestar.config.app import AppConfig
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import HTTPException
from litestar.plugins import InitPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from rasoat.core.problems import Problem
from rasoat.server.web import (
    auth_pages,
    pages_accounts,
    pages_assessment,
    pages_audit,
    pages_collectors,
    pages_exports,
    pages_forms,
    pages_keys,
    pages_management,
    pages_overview,
    pages_persons,
    pages_plugins,
    pages_review,
    pages_rounds,
    pages_submissions,
    pages_units,
    pickers,
)
from rasoat.server.web.base import (
    WEB_DEPENDENCIES,
    LoginRequired,
    on_login_required,
    on_server_error,
    problem_page,
)

HERE = Path(__file__).parent


@get("/favicon.ico", include_in_schema=False)
async def favicon() -> Redirect:
    """Browsers ask for /favicon.ico whatever the page says; the icon is the SVG the pages link to."""
    return Redirect(path="/static/favicon.svg", status_code=301, headers={"Cache-Control": "max-age=86400"})


def web_router() -> Router:
    handlers = [
        favicon,
        *auth_pages.handlers,
        *pages_overview.handlers,
        *pages_review.handlers,
        *pages_submissions.handlers,
        *pages_rounds.handlers,
        *pages_forms.handlers,
        *pages_collectors.handlers,
        *pages_exports.handlers,
        *pages_plugins.handlers,
        *pages_assessment.handlers,
        *pages_management.handlers,
        *pages_persons.handlers,
        *pages_audit.handlers,
        *pages_accounts.handlers,
        *pickers.handlers,
        *pages_units.handlers,
        *pages_keys.handlers,
    ]
    errors: dict = {
        LoginRequired: on_login_required,
        Problem: problem_page,
        HTTPException: on_server_error,
        Exception: on_server_error,
    }
    return Router(path="/", route_handlers=handlers, dependencies=WEB_DEPENDENCIES, exception_handlers=errors,
                  include_in_schema=False)


def template_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # what the pickers (templates/_pickers.html) read on every page that has one
    env.globals["period_choices"] = pickers.period_choices
    env.globals["period_kinds"] = [k.value for k in pickers.KINDS]
    return env


class WebPlugin(InitPlugin):
    """Adds the officer pages, their templates and their static files to the app."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.template_config = TemplateConfig(
            instance=JinjaTemplateEngine.from_environment(template_environment())
        )
        app_config.route_handlers.append(web_router())
        app_config.route_handlers.append(
            create_static_files_router(
                path="/static",
                directories=[HERE / "static"],
                cache_control=CacheControlHeader(max_age=3600),
                include_in_schema=False,
            )
        )
        return app_config
