"""pytest-llenergy: measure the energy, speed and cost of LLM inference as pytest tests."""

__version__ = "0.1.0"
