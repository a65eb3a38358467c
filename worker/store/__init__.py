"""The database and nothing else: engines, the transaction scope, models, column types, migrations,
the managers (the seed's API) and the SQLite writer thread. Knows no event and no Redis; the layers
above it (`apply`, `ops`, `runtime`) decide what to write, this package how it is stored."""
