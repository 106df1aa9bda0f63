"""Per-tenant rate limits, token budgets and usage accounting (see `docs/limits.md`)."""
