"""Request bodies the load sends and the canned responses the upstream returns.

All of it is generated, deterministic and sized exactly, so that runs on different days compare.
The upstream replies are shaped like OpenAI's, because the gateway reads model and usage from them.
"""

from __future__ import annotations

import json
from pathlib import Path

MODEL = "gpt-4o-mini"
SMALL_BODY_BYTES = 1024
LARGE_BODY_BYTES = 64 * 1024
SSE_CHUNKS = 32
_FILLER = "The quick brown fox jumps over the lazy dog while the gateway relays every byte. "


def _chat_body(size: int, *, stream: bool) -> bytes:
    """A chat-completion request of exactly `size` bytes (the user message is padded)."""

    def encode(content: str) -> bytes:
        data: dict[str, object] = {
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "You are a terse benchmark assistant."},
                {"role": "user", "content": content},
            ],
            "temperature": 0.2,
            "max_tokens": 64,
        }
        if stream:
            data["stream"] = True
        return json.dumps(data, separators=(",", ":")).encode()

    envelope = len(encode(""))
    if envelope > size:
        raise ValueError(f"body of {size} bytes is smaller than its envelope ({envelope} bytes)")
    body = encode((_FILLER * (size // len(_FILLER) + 1))[: size - envelope])
    assert len(body) == size, (len(body), size)
    return body


BODY_FILES: dict[str, tuple[int, bool]] = {
    "small": (SMALL_BODY_BYTES, False),
    "large": (LARGE_BODY_BYTES, False),
    "stream": (SMALL_BODY_BYTES, True),
}


def write_bodies(directory: Path) -> dict[str, Path]:
    """Write one file per body kind and return their paths by kind."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, (size, stream) in BODY_FILES.items():
        path = directory / f"{kind}.json"
        path.write_bytes(_chat_body(size, stream=stream))
        paths[kind] = path
    return paths


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def chat_completion_response() -> str:
    return _compact(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1700000000,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Benchmark reply: all is well."},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 212, "completion_tokens": 8, "total_tokens": 220},
            "system_fingerprint": "fp_bench",
        }
    )


def chat_completion_stream() -> str:
    """A stream of SSE_CHUNKS content chunks, a final chunk with usage, and `[DONE]`."""

    def chunk(delta: dict[str, str], finish: str | None, usage: object = None) -> str:
        body: dict[str, object] = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage is not None:
            body["usage"] = usage
        return f"data: {_compact(body)}\n\n"

    events = [chunk({"role": "assistant", "content": ""}, None)]
    events += [chunk({"content": f"word{index} "}, None) for index in range(SSE_CHUNKS)]
    usage = {"prompt_tokens": 212, "completion_tokens": SSE_CHUNKS, "total_tokens": 244}
    events.append(chunk({}, "stop", usage))
    events.append("data: [DONE]\n\n")
    return "".join(events)
