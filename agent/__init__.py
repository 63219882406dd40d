"""kiosk-agent: keeps a classroom display current with its school's day."""

__version__ = "0.1.0"
