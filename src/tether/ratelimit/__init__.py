"""Rate limits: per API key, and per client IP for refused credentials and login attempts."""
