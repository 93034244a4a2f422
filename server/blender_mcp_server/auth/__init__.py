"""Who may use the bus: passwords, JWTs, the verifier on /mcp, the login routes and their throttle."""
