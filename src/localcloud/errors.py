"""The local cloud's one error about templates."""


class TemplateError(Exception):
    """The template is wrong (or uses something the local cloud cannot do)."""
