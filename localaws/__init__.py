"""localaws: an embedded local AWS (moto's server) where Lambda functions and Glue jobs really run.

See docs/localaws.md for what is emulated and how it differs from AWS.
"""

__version__ = "0.1.0"

__all__ = ["LocalAWS", "__version__"]


def __getattr__(name: str):
    if name == "LocalAWS":
        from localaws.server import LocalAWS

        return LocalAWS
    raise AttributeError(name)
