"""HTTP-level NGSI-LD conformance cases, runnable against any broker URL."""
