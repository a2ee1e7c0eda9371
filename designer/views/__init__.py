"""Function views, one module per resource."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """The request of a view that reads ``request.htmx`` (set by django-htmx's ``HtmxMiddleware``)."""

    htmx: HtmxDetails
