"""Count the HTTP requests a Python process sends, for benchmarks and tests (not part of the collection).

Put this directory on PYTHONPATH and name a file in TWINSITE_CALLCOUNT_FILE: Python imports
``sitecustomize`` at start-up, and at exit the process appends one JSON line to that file:
``{"pid", "argv0", "requests", "by_call": {"POST /sdk RetrievePropertiesEx": 1, "GET /api2/json/...": 1}}``.

Every client measured here (pyvmomi, requests/urllib3, urllib) sends through ``http.client``, so
wrapping ``HTTPConnection.putrequest`` counts SOAP calls, REST calls and logins alike, in whatever
process makes them (``ansible-inventory``, a module run by ``ansible``). SOAP calls all go to
``POST /sdk``; the method name is read from the body so the counts say which calls were made.
"""

import atexit
import http.client
import json
import os
import re
import sys

_FILE = os.environ.get("TWINSITE_CALLCOUNT_FILE")

if _FILE:
    _counts: dict[str, int] = {}
    _putrequest, _request = http.client.HTTPConnection.putrequest, http.client.HTTPConnection.request

    def _counting_putrequest(self, method, url, *args, **kwargs):
        path = re.sub(r"/\d+(?=/|$)", "/N", url.split("?")[0])  # /nodes/pve1/qemu/110/config -> .../N/config
        key = f"{method} {path}" + (f" {self._soap_method}" if getattr(self, "_soap_method", None) else "")
        _counts[key] = _counts.get(key, 0) + 1
        self._soap_method = None
        return _putrequest(self, method, url, *args, **kwargs)

    def _naming_request(self, method, url, body=None, *args, **kwargs):
        found = re.search(rb"<soapenv:Body><(\w+)", body if isinstance(body, bytes) else str(body or "").encode())
        self._soap_method = found.group(1).decode() if found else None
        return _request(self, method, url, body, *args, **kwargs)

    http.client.HTTPConnection.putrequest = _counting_putrequest
    http.client.HTTPConnection.request = _naming_request

    @atexit.register
    def _write():
        if _counts:
            line = {"pid": os.getpid(), "argv0": os.path.basename(sys.argv[0]) if sys.argv else "",
                    "requests": sum(_counts.values()), "by_call": _counts}
            with open(_FILE, "a", encoding="utf-8") as out:
                out.write(json.dumps(line, sort_keys=True) + "\n")
