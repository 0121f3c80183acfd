-- Every tag change (history). A tag is on the experiment when its latest row has added = 1.
CREATE TABLE IF NOT EXISTS tags
(
    experiment_id String,
    tag String,
    added UInt8,
    ts Float64,
    session_id String,
    seq UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (experiment_id, tag, ts, session_id, seq);
