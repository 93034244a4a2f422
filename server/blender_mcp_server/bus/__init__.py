"""The bus itself: the directory of clients, routing, the service behind every bus tool, jobs and liveness."""
