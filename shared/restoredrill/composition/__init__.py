"""The composition root: builds the adapters from a function's environment and hands them to the
domain (:mod:`.wiring`), with the CloudWatch metrics hooked in (:mod:`.telemetry`). Only the
handlers (``functions/*/app.py``) import it."""
