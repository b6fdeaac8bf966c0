"""Blueprints, one per screen: shell (home), api (JSON, token auth)."""
