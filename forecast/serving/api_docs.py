"""``/docs`` of forecast-serve, served by the server itself: a server on a closed network (or a
laptop offline) shows its documentation too. FastAPI's default page loads Swagger UI from a
CDN and is blank without internet.

With the ``docs`` extra (``pip install "forecast[docs]"``, the swagger-ui-bundle package) the
page is Swagger UI from the packaged files; without it, a plain page rendered from the OpenAPI
schema, with no script or asset at all.
"""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"


def add_docs(app: FastAPI) -> None:
    """``GET /docs`` on ``app``, created with ``docs_url=None``."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        swagger_ui_path = None
    if swagger_ui_path is not None:
        app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if swagger_ui_path is None:
            return HTMLResponse(plain_page(app.openapi()))
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )


def plain_page(schema: dict[str, Any]) -> str:
    """Every endpoint with its description, answers and request schema, as static HTML."""
    info = schema.get("info", {})
    title = html.escape(info.get("title", "API"))
    parts = [
        f"<h1>{title}</h1>",
        f"<p>{html.escape(info.get('description', ''))}</p>",
        '<p>The full schema is at <a href="/openapi.json">/openapi.json</a>. For the interactive '
        'page, install the docs extra on the server: <code>pip install "forecast[docs]"</code>.'
        "</p>",
    ]
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            parts.append(f"<h2>{method.upper()} {html.escape(path)}</h2>")
            parts.append(f"<p>{html.escape(operation.get('description') or '')}</p>")
            answers = operation.get("responses", {})
            items = "".join(
                f"<li>{code}: {html.escape(answer.get('description', ''))}</li>"
                for code, answer in answers.items()
            )
            parts.append(f"<ul>{items}</ul>")
    schemas = schema.get("components", {}).get("schemas", {})
    if schemas:
        parts.append("<h2>Schemas</h2>")
        for name, body in schemas.items():
            text = html.escape(json.dumps(body, indent=2))
            parts.append(f"<h3>{html.escape(name)}</h3><pre>{text}</pre>")
    head = f'<meta charset="utf-8"><title>{title}</title>'
    body = "\n".join(parts)
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"
