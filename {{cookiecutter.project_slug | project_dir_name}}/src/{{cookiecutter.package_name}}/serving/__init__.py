"""The online side: a FastAPI service for the champion model, its fast path, log and benchmark.

Imports nothing heavy: :mod:`.app` builds the service, :mod:`.server` runs it with uvicorn.
Great Expectations, dbt and DVC are never imported by anything in this sub-package.
"""
