-- The history of every change: one row per event, with where and when it was made.
-- summary is a short JSON description (point batches give their channels and counts).
CREATE TABLE IF NOT EXISTS ${database}.events_local ON CLUSTER ${cluster}
(
    experiment_id String,
    ts Float64,
    kind String,
    session_id String,
    seq UInt64,
    event_id String,
    host String,
    pid UInt32,
    summary String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (experiment_id, ts, session_id, seq);

CREATE TABLE IF NOT EXISTS ${database}.events ON CLUSTER ${cluster} AS ${database}.events_local
ENGINE = Distributed(${cluster}, ${database}, events_local, sipHash64(experiment_id));
