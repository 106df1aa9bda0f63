"""Translation between OpenAI's Chat Completions API and Anthropic's Messages API.

Pure data in, data out: no aiohttp, no I/O, so every mapping is tested without a server.

    fields               typed readers of request JSON; `refuse()` for what cannot be mapped
    mapping              the shared tables: stop reasons, usage, reasoning effort
    anthropic_errors     Anthropic's error body and the status -> error type table
    sse                  server-sent events: an incremental parser and the encoder
    request_to_anthropic OpenAI chat request      -> Anthropic Messages request
    reply_from_anthropic Anthropic message / SSE  -> chat.completion / chat.completion.chunk
    request_to_openai    Anthropic Messages request -> OpenAI chat request
    reply_from_openai    chat.completion / chunks -> Anthropic message / its event sequence

A request field that has no counterpart raises `gateway.errors.InvalidRequestError` naming it
(`param`); nothing is dropped silently. `docs/providers.md` holds the mapping table.
"""
