"""Log lines as JSON, one object per line (``PIPEDECK_LOG_FORMAT=json``): what log collectors read."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

#: attributes every LogRecord has; anything else on a record was passed with ``extra=`` and is kept
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonLinesFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...extra, "exception"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)
