"""The warm materializer of the embedded default: one process per ``EXPSTREAM_HOME`` that keeps chdb open.

Why: starting an interpreter and chdb costs about a second (minutes of disk reads when the page cache is
cold), far more than materializing a batch. One long-lived process per home tails the local log, keeps the
tables current within a poll interval, and answers ``sync()`` and the query side's SQL over a unix socket,
so logging and reading processes never load chdb. ``protocol`` and ``client`` use the standard library only
(a logging process imports them); ``daemon`` is the process; ``tables`` is the query side's table store
over the client.
"""
