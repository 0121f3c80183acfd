-- Per-bucket summaries of numeric points, written by the consumer beside points_numeric, so that a chart of a
-- whole long channel reads a few thousand rows instead of every point (query/charts.py). level L cuts x into
-- buckets of width 16^(L+1) (16, 256, ... 16^8); bucket = floor(x / width). One row per (bucket, event): a batch
-- delivered again writes the same row under the same key (event_id), so reads take any() per (bucket, event_id)
-- before summing counts, and a replay never counts a point twice. x_at_min / x_at_max: the smallest x among
-- the points at the minimum / maximum.
CREATE TABLE IF NOT EXISTS ${database}.points_rollup_local ON CLUSTER ${cluster}
(
    experiment_id String,
    namespace String,
    channel String,
    generation UInt32,
    level UInt8,
    bucket Float64,
    event_id String,
    count UInt64,
    x_first Float64,
    y_first Float64,
    x_last Float64,
    y_last Float64,
    y_min Float64,
    x_at_min Float64,
    y_max Float64,
    x_at_max Float64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (experiment_id, namespace, channel, generation, level, bucket, event_id);

CREATE TABLE IF NOT EXISTS ${database}.points_rollup ON CLUSTER ${cluster} AS ${database}.points_rollup_local
ENGINE = Distributed(${cluster}, ${database}, points_rollup_local, sipHash64(experiment_id));
