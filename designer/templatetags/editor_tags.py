"""Formatting for the editor's templates."""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_CODE_SPAN = re.compile(r"(`[^`\n]+`)")


@register.filter
def code_spans(text: object) -> SafeString:
    """``text`` escaped, its Markdown code spans (`x`) shown as ``<code>x</code>`` (plugin help texts)."""
    parts = _CODE_SPAN.split(str(text))
    html = "".join(
        format_html("<code>{}</code>", part[1:-1]) if i % 2 else escape(part) for i, part in enumerate(parts)
    )
    return mark_safe(html)  # every part is escaped above
