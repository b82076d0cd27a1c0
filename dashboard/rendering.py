"""One template fragment serves the full page (by `include`) and the htmx request
(rendered alone), as in contact.app. Responses say `Vary: HX-Request` so a cache
never hands the fragment to a full-page load or the other way round."""

from __future__ import annotations

from flask import make_response, render_template, request


def wants_fragment(target: str | None = None) -> bool:
    """True for an htmx request that swaps part of a page.

    Boosted navigation and history restores need the whole page. With `target`,
    only a request aimed at that element (its `HX-Target`) counts.
    """
    headers = request.headers
    if headers.get("HX-Request") != "true":
        return False
    if headers.get("HX-Boosted") == "true" or headers.get("HX-History-Restore-Request") == "true":
        return False
    return target is None or headers.get("HX-Target") == target


def page_or_fragment(page_template: str, fragment_template: str, *, target: str | None = None, status: int = 200,
                     headers: dict[str, str] | None = None, **context):
    template = fragment_template if wants_fragment(target) else page_template
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def fragment(template: str, *, status: int = 200, headers: dict[str, str] | None = None, **context):
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
