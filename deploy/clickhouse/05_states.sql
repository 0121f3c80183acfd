-- Every state change: running at creation, then succeeded / failed (with traceback) / aborted.
CREATE TABLE IF NOT EXISTS states
(
    experiment_id String,
    state String,
    traceback String,
    ts Float64,
    session_id String,
    seq UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (experiment_id, ts, session_id, seq);
