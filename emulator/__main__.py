"""``python -m emulator --port N``: the Spotify emulator on its own."""

from emulator.server import main

main()
