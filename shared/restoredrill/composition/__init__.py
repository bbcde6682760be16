"""The composition root: builds the adapters from a function's environment and hands them to the
domain. Only the handlers (``functions/*/app.py``) import it."""
