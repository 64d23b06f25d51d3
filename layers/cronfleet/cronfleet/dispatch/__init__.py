"""The dispatcher: each tick claims the due slots, fans them out, and runs the watchdog."""
