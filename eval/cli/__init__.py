"""The ``skyloom eval`` commands (``commands``) and ``skyloom eval score`` on folders of videos (``score``)."""

from skyloom.eval.cli.commands import register

__all__ = ["register"]
