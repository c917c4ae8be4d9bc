"""``dca serve``: a local OpenAI-compatible HTTP server over warm models (FastAPI + uvicorn)."""

from dca.serve.config import ServeConfig, is_loopback

__all__ = ["ServeConfig", "create_app", "is_loopback"]


def __getattr__(name: str) -> object:
    if name == "create_app":  # FastAPI loads only when an app is made
        from dca.serve.app import create_app

        return create_app
    raise AttributeError(name)
