from tests.integrations.upstreams import http_upstream, stdio_command  # noqa: F401  (fixtures)
