#!/usr/bin/env python3
"""The demo's stand-in for the service a rollback brings back: a small HTTP
API on 127.0.0.1 (health, database health, search, store-then-read), so the
demo's smoke test checks real HTTP answers. Prints its port when listening.
Standard library only."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MEMORIES = {}


class Api(BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("content-length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, {"status": "healthy", "version": "2.0.0"})
        elif self.path == "/health/db":
            self.reply(200, {"database": "ok", "latency_ms": 2})
        elif self.path.startswith("/memories/") and self.path[10:] in MEMORIES:
            key = self.path[10:]
            self.reply(200, {"id": key, "text": MEMORIES[key]})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path == "/search":
            self.reply(200, {"results": [{"id": "m-1", "score": 0.91}]})
        elif self.path == "/memories":
            key = f"m-{len(MEMORIES) + 1}"
            MEMORIES[key] = self.body().get("text", "")
            self.reply(201, {"result": {"id": key}})
        else:
            self.reply(404, {"error": "not found"})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    print(server.server_address[1], flush=True)
    server.serve_forever()
