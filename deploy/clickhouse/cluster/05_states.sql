-- Every state change: running at creation, then succeeded / failed (with traceback) / aborted.
CREATE TABLE IF NOT EXISTS ${database}.states_local ON CLUSTER ${cluster}
(
    experiment_id String,
    state String,
    traceback String,
    ts Float64,
    session_id String,
    seq UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (experiment_id, ts, session_id, seq);

CREATE TABLE IF NOT EXISTS ${database}.states ON CLUSTER ${cluster} AS ${database}.states_local
ENGINE = Distributed(${cluster}, ${database}, states_local, sipHash64(experiment_id));
