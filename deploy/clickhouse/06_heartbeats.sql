-- Latest heartbeat of each producing process (ReplacingMergeTree keeps the greatest ts).
CREATE TABLE IF NOT EXISTS heartbeats
(
    experiment_id String,
    session_id String,
    host String,
    pid UInt32,
    ts Float64
)
ENGINE = ReplacingMergeTree(ts)
ORDER BY (experiment_id, session_id);
