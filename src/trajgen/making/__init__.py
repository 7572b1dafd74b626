"""Making a run: the lock, committing shards, status, resume and repair, the work loop, the executors
(local processes, Dask), the checks before a launch and the in-flight counts."""
