"""Outgoing email: templates, the send task and a development SMTP sink."""
