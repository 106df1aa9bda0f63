"""The fast upstream: nginx answering every chat completion with a canned reply from a file.

nginx cannot pick a reply by a field of the request body, so the reply is picked by path:
`/v1/chat/completions` returns JSON and `/sse/v1/chat/completions` returns an SSE stream. A tenant
that streams is therefore given `/sse/v1` as its upstream base URL. nginx runs in the foreground
as a child of the bench, with one worker, on 127.0.0.1 only, with no access log, and keeps client
connections open for as long as the bench runs, so that proxies' pools stay warm.
"""

from __future__ import annotations

from pathlib import Path

from bench import payloads
from bench.procs import Server, http_status, start_server, wait_until

CONFIG_TEMPLATE = """\
daemon off;
master_process on;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    types {{ }}
    sendfile on;
    tcp_nodelay on;
    open_file_cache max=16 inactive=1h;
    open_file_cache_valid 1h;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    client_max_body_size 8m;
    client_body_buffer_size 1m;
    keepalive_requests 10000000;
    keepalive_timeout 300s;

    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {root}/html;

        # A POST to a static file is a 405; error_page turns it into a GET of the same file.
        location = /v1/chat/completions {{
            default_type application/json;
            error_page 405 =200 $uri;
        }}

        location = /sse/v1/chat/completions {{
            default_type text/event-stream;
            add_header Cache-Control no-cache;
            error_page 405 =200 $uri;
        }}

        location = /healthz {{
            default_type text/plain;
            return 200 'ok';
        }}
    }}
}}
"""
REPLY_FILES = {
    "v1/chat/completions": payloads.chat_completion_response,
    "sse/v1/chat/completions": payloads.chat_completion_stream,
}


def write_site(root: Path, port: int) -> Path:
    """Write the canned replies and the config under `root`; return the config's path."""
    for relative, reply in REPLY_FILES.items():
        path = root / "html" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(reply())
    for directory in (root, *(p for p in (root / "html").rglob("*") if p.is_dir())):
        directory.chmod(0o755)  # nginx workers drop root privileges and must still read them
    config = root / "nginx.conf"
    config.write_text(CONFIG_TEMPLATE.format(root=root, port=port))
    return config


def start_upstream(nginx: str, work_dir: Path, port: int) -> Server:
    """Write the config under `work_dir`, start nginx on `port` and wait until it answers."""
    root = work_dir / "nginx"
    config = write_site(root, port)
    argv = [nginx, "-p", str(root), "-c", str(config), "-e", str(root / "error.log")]
    server = start_server("upstream-nginx", argv, work_dir)
    wait_until(
        lambda: http_status(f"http://127.0.0.1:{port}/healthz") == 200,
        server,
        timeout_s=15,
        what="GET /healthz == 200",
    )
    return server
