"""The webhook log: filters and keyset pages, resend, export."""
