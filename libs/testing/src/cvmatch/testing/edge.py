"""Renders the Envoy edge config from `deploy/envoy/` for given ports and backends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template

REPO = Path(__file__).resolve().parents[5]
ENVOY_DIR = REPO / "deploy" / "envoy"


def _endpoints(addresses: Sequence[tuple[str, int]]) -> str:
    lines = []
    for host, port in addresses:
        lines.append("        - endpoint:\n"
                     f"            address: {{socket_address: {{address: {host}, port_value: {port}}}}}")
    return "\n".join(lines)


def render_envoy_config(
    http_port: int,
    admin_port: int,
    backends: Mapping[str, Sequence[tuple[str, int]]],
    *,
    listen_address: str = "127.0.0.1",
    discovery: str = "STATIC",
    descriptor: Path | None = None,
    lua: Path | None = None,
    cors_origins: Sequence[str] = ("*",),
) -> str:
    """The edge config with one health-checked HTTP/2 cluster per backend."""
    cluster_tmpl = Template((ENVOY_DIR / "cluster.yaml.tmpl").read_text())
    clusters = "\n".join(
        cluster_tmpl.substitute(NAME=name, DISCOVERY=discovery, ENDPOINTS=_endpoints(addrs))
        for name, addrs in backends.items())
    return Template((ENVOY_DIR / "envoy.yaml.tmpl").read_text()).substitute(
        ADMIN_PORT=admin_port,
        HTTP_PORT=http_port,
        LISTEN_ADDRESS=listen_address,
        DESCRIPTOR_PATH=str(descriptor or ENVOY_DIR / "cvmatch.pb"),
        LUA_PATH=str(lua or ENVOY_DIR / "cvmatch_edge.lua"),
        CLUSTERS=clusters,
        CORS_ALLOW_ORIGINS=_cors_origins(cors_origins),
    )


def _cors_origins(origins: Sequence[str]) -> str:
    """Origins browsers may call the API from: `*` for any, else exact origins (`https://app.example.com`)."""
    lines = []
    for origin in origins:
        match = "{safe_regex: {regex: \".*\"}}" if origin == "*" else f"{{exact: \"{origin}\"}}"
        lines.append(f"                  - {match}")
    return "\n".join(lines)
