"""Counts in words a person reads: ``1 track``, ``2,014 artists``. Pages and flash messages
say a count through ``counted`` (the template filter of the same name), not each their own
singular-or-plural test."""

from __future__ import annotations


def counted(count: int, noun: str) -> str:
    """A count and its noun, in the singular when it is one."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def init_app(app) -> None:
    app.add_template_filter(counted)
