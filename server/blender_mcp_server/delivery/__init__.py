"""How a record reaches one client: its outbox, the channel it is written to, and its encoding."""
