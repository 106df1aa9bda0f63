"""Managed-mode tool plugins: manifests, the SSRF guard, and running a tool call."""
