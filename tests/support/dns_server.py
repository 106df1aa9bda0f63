"""A real, tiny DNS server for the tests: UDP on 127.0.0.1, answering TXT queries from a dict.

Names it holds get their TXT strings (an empty answer for other types); any other name is
NXDOMAIN. It runs in a thread so sync CLI tests and async app tests can both use it.
"""

from __future__ import annotations

import socket
import threading

import dns.exception
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class TxtDnsServer:
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)

    def set_txt(self, name: str, *values: str) -> None:
        self.records[name.lower().rstrip(".")] = list(values)

    def start(self) -> TxtDnsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            try:
                self._sock.sendto(self.answer(wire), peer)
            except (dns.exception.DNSException, OSError):
                continue

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.queries.append(name)
        values = self.records.get(name)
        if values is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT and values:
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name,
                    60,
                    dns.rdataclass.IN,
                    dns.rdatatype.TXT,
                    [f'"{value}"' for value in values],
                )
            )
        return response.to_wire()
