"""The event log itself, used by the producer (which appends) and the consumers (which read).

``records``: topic names, positions (watermarks) and records; ``local_log``: the append-only
segment files of the embedded default (also the Kafka transport's spool); ``memory``: the same in
a process, for tests and embedding; ``kafka``: connection options, topic names and topic admin of
a Kafka cluster. Neither ``producer`` nor ``consumers`` is imported from here.
"""
