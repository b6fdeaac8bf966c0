"""Blueprints, one per screen: settings, log, login, the JSON api, and the shell (home, health)."""
