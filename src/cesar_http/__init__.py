"""Cesar's HTTP API (FastAPI), served by ``cesar serve``; install with the ``http`` extra."""
