"""The capgate application: app factory, routes, storage wiring, CLI and settings."""
