"""The explorer page (/explorer): placeholder while it is built."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Mount the explorer's routes."""
