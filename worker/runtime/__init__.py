"""Everything that knows arq or Redis: the worker's settings and supervisor (`runner`), `KomasWorker`
and its Lua scripts (`claims`, `lua/`), the job functions (`jobs`), the job gate (`poison`), group
commit, lock heartbeats, the writer lease, warm-up, status, and the client the API and CLI use to
reach the worker. The only package that imports arq (checked by `lint-imports`)."""
