"""API keys, their verification and the authentication middleware."""
