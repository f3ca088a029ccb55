"""Deployment toolkit for the log-mel ONNX front end of wake-word and keyword-spotting models."""

__version__ = "0.1.0"
