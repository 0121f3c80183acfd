-- Every tag change (history). A tag is on the experiment when its latest row has added = 1.
CREATE TABLE IF NOT EXISTS ${database}.tags_local ON CLUSTER ${cluster}
(
    experiment_id String,
    tag String,
    added UInt8,
    ts Float64,
    session_id String,
    seq UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (experiment_id, tag, ts, session_id, seq);

CREATE TABLE IF NOT EXISTS ${database}.tags ON CLUSTER ${cluster} AS ${database}.tags_local
ENGINE = Distributed(${cluster}, ${database}, tags_local, sipHash64(experiment_id));
