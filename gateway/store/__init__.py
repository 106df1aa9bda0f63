"""Redis-backed records: every key name in `keys`, one repository per record kind."""
