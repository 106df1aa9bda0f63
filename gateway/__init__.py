"""An OpenAI-compatible reverse-proxy gateway for many tenants behind one endpoint."""

__version__ = "0.1.0"
