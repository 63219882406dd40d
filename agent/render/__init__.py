"""Everything that puts pixels on the screen; nothing here knows about HTTP."""
