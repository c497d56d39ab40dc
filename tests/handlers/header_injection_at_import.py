"""Raises, at import, an exception whose class name holds CR LF and a would-be header line."""

raise type("Bad\r\nX-Injected: yes", (Exception,), {})("raised at import")
