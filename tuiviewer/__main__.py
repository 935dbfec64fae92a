"""Allow ``python -m tuiviewer``."""

from __future__ import annotations

from tuiviewer.cli import main

raise SystemExit(main())
