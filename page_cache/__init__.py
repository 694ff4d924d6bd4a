"""Pages computed once per change, not once per view (issue 15).

- ``store``: the stamp of a person's data (``users.data_version``, ``catalogue_version``,
  the code's digest, the inputs no version counts) and the answers kept under it in the
  ``chart_cache`` table; ``warm()`` precomputes after a writer's commit. SQL in ``store_db``.
- ``conditional``: ETag, 304 and Cache-Control for personal responses (``no-store`` unless
  a view opts in to revalidation).

What moves the versions lives in schema_postgres.sql (version 11) and
``users_db.bump_data_version``; how a chart plugs in is in dashboard.py's docstring.
"""
