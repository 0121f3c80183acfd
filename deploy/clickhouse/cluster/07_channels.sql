-- Channels ("logs") and their resets. namespace: 'user' (log_*) or 'system' (stdout, monitoring).
-- type: 'numeric', 'text' or 'image'. Points of a channel are visible when their generation is the
-- channel's greatest generation; every reset_log adds a row with the next generation.
CREATE TABLE IF NOT EXISTS ${database}.channels_local ON CLUSTER ${cluster}
(
    experiment_id String,
    namespace String,
    channel String,
    type String,
    generation UInt32,
    ts Float64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (experiment_id, namespace, channel, generation);

CREATE TABLE IF NOT EXISTS ${database}.channels ON CLUSTER ${cluster} AS ${database}.channels_local
ENGINE = Distributed(${cluster}, ${database}, channels_local, sipHash64(experiment_id));
