"""Portals, users, webhooks and OAuth applications: who may call the API."""
