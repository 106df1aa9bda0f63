"""The admin service layer: the one place the rules for changing tenants live.

The CLI and the admin REST API both call these functions with an `AdminContext` that says who is
acting; each function checks the actor's scope, validates, writes through the repositories and
appends one audit record per write. Answers are the records' public dicts, the same field names
the CLI prints with `--json` and the API answers.
"""
