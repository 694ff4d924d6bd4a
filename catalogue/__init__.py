"""Artist and album pages: a person's plays, rank history and tracks of one artist or one
album, with covers (views in ``pages.py``, their SQL in ``catalogue_db.py``).

An artist is known by its Spotify id when a track's stored JSON credits it; a track an
export only named (no JSON yet) has its artist's name only, and its page is found by that
name (``/artists/by-name/<name>``): that page also gathers the catalogue's artists of that
name in the person's music. An album is known by its id only.
"""
