-- Every artifact write and delete (history). A path exists when its latest row has deleted = 0;
-- its bytes are in the object store under blobs/<sha256>.
CREATE TABLE IF NOT EXISTS ${database}.artifacts_local ON CLUSTER ${cluster}
(
    experiment_id String,
    path String,
    sha256 String,
    size UInt64,
    deleted UInt8,
    ts Float64,
    session_id String,
    seq UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (experiment_id, path, ts, session_id, seq);

CREATE TABLE IF NOT EXISTS ${database}.artifacts ON CLUSTER ${cluster} AS ${database}.artifacts_local
ENGINE = Distributed(${cluster}, ${database}, artifacts_local, sipHash64(experiment_id));

-- Source files uploaded at creation; bytes under blobs/<sha256>.
CREATE TABLE IF NOT EXISTS ${database}.sources_local ON CLUSTER ${cluster}
(
    experiment_id String,
    path String,
    sha256 String,
    size UInt64,
    mode UInt32,
    ts Float64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (experiment_id, path);

CREATE TABLE IF NOT EXISTS ${database}.sources ON CLUSTER ${cluster} AS ${database}.sources_local
ENGINE = Distributed(${cluster}, ${database}, sources_local, sipHash64(experiment_id));
