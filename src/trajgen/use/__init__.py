"""Using a finished run: open_run and the torch adapters, verify, export, preview and report."""
