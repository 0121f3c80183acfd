-- How far each consumer group has materialized each partition (next offset to read).
-- Written after the data of those offsets; Experiment.sync() waits on it.
CREATE TABLE IF NOT EXISTS consumer_progress
(
    consumer_group String,
    topic String,
    partition UInt32,
    offset UInt64,
    ts Float64
)
ENGINE = ReplacingMergeTree(offset)
ORDER BY (consumer_group, topic, partition);
