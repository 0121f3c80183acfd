-- Channels ("logs") and their resets. namespace: 'user' (log_*) or 'system' (stdout, monitoring).
-- type: 'numeric', 'text' or 'image'. Points of a channel are visible when their generation is the
-- channel's greatest generation; every reset_log adds a row with the next generation.
CREATE TABLE IF NOT EXISTS channels
(
    experiment_id String,
    namespace String,
    channel String,
    type String,
    generation UInt32,
    ts Float64
)
ENGINE = ReplacingMergeTree
ORDER BY (experiment_id, namespace, channel, generation);
