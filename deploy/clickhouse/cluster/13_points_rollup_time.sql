-- points_rollup by timestamp: the same per-bucket summaries of numeric points, for charts on the time axes
-- (query/charts.py). level L cuts ts into buckets of 16^(L-1) seconds (1/16 s ... 16^6 s); bucket = floor(ts / width).
-- The x_* columns hold timestamps: x_first / x_last are the smallest / largest ts, y_first / y_last the value at the
-- smallest / largest (ts, y); x_at_min / x_at_max the smallest ts among the points at the minimum / maximum.
-- step_min / step_max: the smallest and largest logged x of the bucket's points, where a zoomed chart finds the
-- points of its partial end buckets in points_numeric (whose key has x, not ts). One row per (bucket, event), as in
-- points_rollup. A store upgraded with points already in it gets this table empty: charts read those logs' points
-- until `expstream replay` writes their rows.
CREATE TABLE IF NOT EXISTS ${database}.points_rollup_time_local ON CLUSTER ${cluster}
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
    x_at_max Float64,
    step_min Float64,
    step_max Float64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (experiment_id, namespace, channel, generation, level, bucket, event_id);

CREATE TABLE IF NOT EXISTS ${database}.points_rollup_time ON CLUSTER ${cluster} AS ${database}.points_rollup_time_local
ENGINE = Distributed(${cluster}, ${database}, points_rollup_time_local, sipHash64(experiment_id));
