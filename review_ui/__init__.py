"""The review UI: analysts triage the queue, liaison officers and admins build on it."""

__version__ = "0.1.0"
