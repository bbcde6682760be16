"""The commands' defaults, read by their parsers (:mod:`restoredrill_cli.commands`, for the
options and their help) and by their implementations alike.

Standard library only: every invocation of `restoredrill` imports it while building the parsers.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_SAVE_DIR = Path(".restoredrill/demo")
DEFAULT_TIMEOUT_SECONDS = 3600.0
DEFAULT_POLL_SECONDS = 5.0
DEFAULT_WINDOW_DAYS = 30
DEFAULT_POLICY_FILE = Path("policy/drill-policy.yaml")
LOCAL_SOURCE_DB = "clinic-db"
