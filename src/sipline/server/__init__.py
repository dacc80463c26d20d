"""The process: the ASGI app, `serve`, the SIP side's wiring, line events, TLS."""
