"""Listening history from Spotify's data exports ("Download your data").

Module map:
- ``formats``: which file is which (by name, then by its first row) and what one row of
  either generation of the format becomes (a play, or a counted reason it is not one);
- ``archive``: the uploaded zip or JSON files, read entry by entry from the archive with
  bounds on size and ratio, never extracted to disk by name;
- ``importer``: streams every file through the streaming JSON parser into COPY, resolves
  the staged rows in SQL (history_db) in one transaction, reports progress;
- ``enrichment``: fetches the full track objects an export only named, one
  ``GET /v1/tracks/{id}`` at a time, resumable;
- ``page``: the ``/import`` blueprint (upload, progress, summary); ``cli``: ``flask import-history``;
- ``history_db``: the import's SQL (staging, resolving, fingerprints); ``imports_db``: the
  recorded imports and their uploaded files;
- ``uploads``: uploaded files kept in PostgreSQL until their import ran (any worker reads them);
- ``runs``: the recorded import a page polls (queue, progress, outcome) and one attempt of its job;
- ``tasks``: the import and enrichment jobs of the engine, and their housekeeping.

The formats follow Spotify's "Understanding my data" page
(https://support.spotify.com/us/article/understanding-my-data/).
"""
