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

-- When the table store received the latest heartbeat of each producing process, by the store's own clock
-- (received is filled by the server, or chdb, at insert). Liveness compares it with the store's now(), so
-- neither the writer's nor the reader's clock decides whether a run is alive (README, "Order of changes").
CREATE TABLE IF NOT EXISTS ${database}.liveness_local ON CLUSTER ${cluster}
(
    experiment_id String,
    session_id String,
    received DateTime DEFAULT now()
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', received)
ORDER BY (experiment_id, session_id);

CREATE TABLE IF NOT EXISTS ${database}.liveness ON CLUSTER ${cluster} AS ${database}.liveness_local
ENGINE = Distributed(${cluster}, ${database}, liveness_local, sipHash64(experiment_id));
