-- Latest heartbeat of each producing process (ReplacingMergeTree keeps the greatest ts).
CREATE TABLE IF NOT EXISTS ${database}.heartbeats_local ON CLUSTER ${cluster}
(
    experiment_id String,
    session_id String,
    host String,
    pid UInt32,
    ts Float64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', ts)
ORDER BY (experiment_id, session_id);

CREATE TABLE IF NOT EXISTS ${database}.heartbeats ON CLUSTER ${cluster} AS ${database}.heartbeats_local
ENGINE = Distributed(${cluster}, ${database}, heartbeats_local, sipHash64(experiment_id));
