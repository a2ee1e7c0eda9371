"""Function views, one module per resource."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """The request of a view that reads ``request.htmx`` (set by django-htmx's ``HtmxMiddleware``)."""

    htmx: HtmxDetails


def is_htmx(request: HttpRequest) -> bool:
    """True for a request htmx sent (django-htmx's middleware sets ``request.htmx``)."""
    return bool(getattr(request, "htmx", False))


def go_to(request: HttpRequest, url: str) -> HttpResponse:
    """To ``url``: the whole page for an htmx request (``HX-Redirect``), else a plain redirect."""
    return HttpResponseClientRedirect(url) if is_htmx(request) else redirect(url)
