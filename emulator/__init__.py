"""The local Spotify: accounts service plus the Web API subset the app uses (see server.py)."""
