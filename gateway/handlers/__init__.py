"""Provider handlers: `registry` finds them; `openai` and `echo` are built in."""
