"""ASGI entry point: HTTP through Django, websockets through Channels (authenticated, same-origin)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "designer.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from designer.routing import websocket_urlpatterns  # noqa: E402
from designer.runs.worker import StartsEmbeddedWorker  # noqa: E402

# StartsEmbeddedWorker: the in-process run worker starts with the server when
# PIPEDECK_INPROCESS_WORKER is true, so `make run` needs no second process.
application = StartsEmbeddedWorker(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            # (types-channels wants URLRouter routes of a stub-only URLPattern subclass path() never returns)
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns))  # type: ignore[arg-type]
            ),
        }
    )
)
