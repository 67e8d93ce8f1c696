"""``python -m broker.loader.worker``: one worker process of a load, where it is not forked
from the writer (``broker.loader.pipeline``).

A module of its own, imported by nothing: run as ``__main__`` it is not also
imported under its name (as ``pipeline`` is, by the package), so the frames it
unpickles are of the same classes it checks them against.
"""

from broker.loader.pipeline import serve

if __name__ == "__main__":
    serve()
