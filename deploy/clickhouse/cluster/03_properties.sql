-- Every property change (history). The current value of a key is the row with the greatest (ts, session_id, seq):
--   SELECT key, argMax(value, (ts, session_id, seq)) AS value FROM properties
--   WHERE experiment_id = '...' GROUP BY key HAVING argMax(removed, (ts, session_id, seq)) = 0
CREATE TABLE IF NOT EXISTS ${database}.properties_local ON CLUSTER ${cluster}
(
    experiment_id String,
    key String,
    value String,
    removed UInt8,
    ts Float64,
    session_id String,
    seq UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (experiment_id, key, ts, session_id, seq);

CREATE TABLE IF NOT EXISTS ${database}.properties ON CLUSTER ${cluster} AS ${database}.properties_local
ENGINE = Distributed(${cluster}, ${database}, properties_local, sipHash64(experiment_id));
