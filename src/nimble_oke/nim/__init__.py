"""NIM API adapter: an aiohttp client for NIM/OpenAI-compatible endpoints and the smoke suite."""
