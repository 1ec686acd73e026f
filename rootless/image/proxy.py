"""Proxies from the environment for registry requests: which hosts NO_PROXY exempts, and
the urllib handler that goes direct for those (see ``no_proxy_matches`` for the rules)."""

from rootless.image.regconfig import in_network, ip_address, split_port


def no_proxy_matches(host: str, no_proxy: str) -> bool:
    """Whether ``host`` (``name``, ``name:port``, ``[v6]:port``) is exempt from the proxy by
    ``no_proxy``, the comma-separated NO_PROXY value, read as Docker (Go) reads it: ``*``;
    a domain, matching the name and its subdomains (a leading dot is ignored); an entry
    with a port, matching that port only; an IP address; or a CIDR block of addresses.

    urllib alone knows names and ``*`` only, so a NO_PROXY copied from a Docker set-up
    (``10.0.0.0/8,.corp``) would send a registry at 10.1.2.3 to the proxy. Unlike Go we
    do not exempt loopback by itself: as for curl and Python tools, NO_PROXY says so."""
    name, port = split_port(host.strip().lower())
    address = ip_address(name)
    for entry in (e.strip().lower() for e in (no_proxy or "").split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            if address is not None and in_network(address, entry):
                return True
            continue
        entry_name, entry_port = split_port(entry)
        if entry_port and entry_port != port:
            continue
        entry_address = ip_address(entry_name)
        if entry_address is not None or address is not None:
            if entry_address is not None and entry_address == address:
                return True
            continue
        entry_name = entry_name.lstrip(".")
        if entry_name and (name == entry_name or name.endswith("." + entry_name)):
            return True
    return False


_proxy_class = None


def handler():
    """A urllib ProxyHandler for the proxy variables of the environment (HTTP_PROXY,
    HTTPS_PROXY, lower case first, as urllib reads them) that exempts what NO_PROXY names
    in ``no_proxy_matches``' sense (urllib's own handler knows names and ``*`` only)."""
    global _proxy_class
    import urllib.request
    if _proxy_class is None:
        class ProxyHandler(urllib.request.ProxyHandler):
            def __init__(self, proxies, no_proxy):
                super().__init__(proxies)
                self.no_proxy = no_proxy

            def proxy_open(self, req, proxy, type):
                if no_proxy_matches(req.host, self.no_proxy):
                    return None  # go direct: the next handler opens the connection
                return super().proxy_open(req, proxy, type)

        _proxy_class = ProxyHandler
    proxies = urllib.request.getproxies()
    return _proxy_class(proxies, proxies.get("no", ""))
