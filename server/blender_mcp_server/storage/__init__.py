"""What outlives a request: users, tokens, jobs and queued records, and the engines that keep them."""
