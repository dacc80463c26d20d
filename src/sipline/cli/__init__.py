"""The `sipline` command: its parser and the operator commands."""
