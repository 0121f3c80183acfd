-- How far each consumer group has materialized each partition (next offset to read).
-- Written after the data of those offsets; Experiment.sync() waits on it.
CREATE TABLE IF NOT EXISTS ${database}.consumer_progress_local ON CLUSTER ${cluster}
(
    consumer_group String,
    topic String,
    partition UInt32,
    offset UInt64,
    ts Float64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', offset)
ORDER BY (consumer_group, topic, partition);

CREATE TABLE IF NOT EXISTS ${database}.consumer_progress ON CLUSTER ${cluster} AS ${database}.consumer_progress_local
ENGINE = Distributed(${cluster}, ${database}, consumer_progress_local, sipHash64(consumer_group));
