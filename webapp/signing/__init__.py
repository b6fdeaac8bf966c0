"""Request signing for outgoing webhook messages (AWS SigV4 and its Escher generalisation)."""
