"""Talking to upstream providers: one transport for every handler and tool plugin.

headers.py    what crosses the gateway in each direction (hop-by-hop and credential rules)
errors.py     the one place aiohttp's client errors and timeouts become gateway errors
retries.py    retry policy: which answers are retried, backoff with jitter, Retry-After
reply.py      `UpstreamReply`: a final upstream answer, still open, for the relay
deployments.py a client's deployments, one request's plan of tries and bodies, its deadline
transport.py  `UpstreamTransport.send`: the plan's tries, retries, fallbacks, attempts
"""
