"""The pytest layer of pytest-llenergy (entry point ``pytest11: llenergy``)."""
