"""migrate: move a plugin-based, file-backed Python application onto Kubernetes, phase by phase."""

__version__ = "0.1.0"
