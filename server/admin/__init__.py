"""The browser console at /admin: server-rendered pages over the same key, usage and tool functions as the API."""
