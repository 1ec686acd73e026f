"""``search``: Docker Hub's search API for docker.io, the catalog API elsewhere.

A catalog lists repository names only (no descriptions or stars), so for other
registries we list the repositories whose name contains the term.
"""

import urllib.parse
from typing import List, Optional

from rootless import jsonfast
from rootless.errors import UsageError


def search(term: str, limit: int = 25, tls_verify: Optional[bool] = None, cert_dir: Optional[str] = None,
           debug=None) -> List[dict]:
    from rootless.image import regconfig
    from rootless.image.registry import Client
    if limit < 1 or limit > 100:
        raise UsageError("--limit must be between 1 and 100")
    host, _, text = term.rpartition("/") if "/" in term and ("." in term.split("/")[0] or ":" in term.split("/")[0]
                                                             or term.split("/")[0] == "localhost") else ("", "", term)
    host = host or "docker.io"
    config = regconfig.RegistryConfig.load()
    if host == "docker.io":
        client = Client("index.docker.io", config, tls_verify, cert_dir, debug=debug, for_push=True)
        url = "https://index.docker.io/v1/search?" + urllib.parse.urlencode({"q": text, "n": limit})
        resp = client.request("GET", url, "")
        data = jsonfast.loads(resp.read().decode())
        return [{"Name": r.get("name", ""), "Description": (r.get("description") or "").replace("\n", " "),
                 "StarCount": r.get("star_count", 0), "IsOfficial": "[OK]" if r.get("is_official") else ""}
                for r in data.get("results", [])[:limit]]
    client = Client(host, config, tls_verify, cert_dir, debug=debug, for_push=True)
    names: List[str] = []
    path = "_catalog?n=1000"
    while path and len(names) < 100000:
        resp = client.request("GET", path, "registry:catalog:*")
        body = jsonfast.loads(resp.read().decode())
        names += body.get("repositories") or []
        link = resp.headers.get("link", "")
        path = ""
        if 'rel="next"' in link:
            target = link.split(";")[0].strip().strip("<>")
            path = target[4:] if target.startswith("/v2/") else ""
    found = [n for n in names if text.lower() in n.lower()][:limit]
    return [{"Name": "%s/%s" % (host, n), "Description": "", "StarCount": 0, "IsOfficial": ""} for n in found]
