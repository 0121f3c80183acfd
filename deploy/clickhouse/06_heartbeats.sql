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

-- When the table store received the latest heartbeat of each producing process, by the store's own clock
-- (received is filled by the server, or chdb, at insert). Liveness compares it with the store's now(), so
-- neither the writer's nor the reader's clock decides whether a run is alive (README, "Order of changes").
CREATE TABLE IF NOT EXISTS liveness
(
    experiment_id String,
    session_id String,
    received DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(received)
ORDER BY (experiment_id, session_id);
