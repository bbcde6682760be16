"""The check families, each named for what it checks: :mod:`.instance` (connect, TLS, server,
recovery, databases, roles), :mod:`.catalog` (the catalog and the schema fingerprint),
:mod:`.data` (row counts, content fingerprints, freshness, assertions) and :mod:`.physical`
(amcheck on heaps and btree indexes)."""
