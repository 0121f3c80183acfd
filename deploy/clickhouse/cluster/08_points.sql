-- Channel points, one table per value type. x: the point's coordinate; ts: Unix seconds.
-- The key makes a replayed point replace its twin; read with FINAL (or GROUP BY the key) when exact
-- counts matter before background merges have run.
CREATE TABLE IF NOT EXISTS ${database}.points_numeric_local ON CLUSTER ${cluster}
(
    experiment_id String,
    namespace String,
    channel String,
    generation UInt32,
    x Float64,
    y Float64,
    ts Float64,
    session_id String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (experiment_id, namespace, channel, generation, x, session_id);

CREATE TABLE IF NOT EXISTS ${database}.points_numeric ON CLUSTER ${cluster} AS ${database}.points_numeric_local
ENGINE = Distributed(${cluster}, ${database}, points_numeric_local, sipHash64(experiment_id));

CREATE TABLE IF NOT EXISTS ${database}.points_text_local ON CLUSTER ${cluster}
(
    experiment_id String,
    namespace String,
    channel String,
    generation UInt32,
    x Float64,
    y String,
    ts Float64,
    session_id String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (experiment_id, namespace, channel, generation, x, session_id);

CREATE TABLE IF NOT EXISTS ${database}.points_text ON CLUSTER ${cluster} AS ${database}.points_text_local
ENGINE = Distributed(${cluster}, ${database}, points_text_local, sipHash64(experiment_id));

-- Image bytes are in the object store under blobs/<sha256>.
CREATE TABLE IF NOT EXISTS ${database}.points_image_local ON CLUSTER ${cluster}
(
    experiment_id String,
    namespace String,
    channel String,
    generation UInt32,
    x Float64,
    image_name String,
    description String,
    sha256 String,
    size UInt64,
    ts Float64,
    session_id String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (experiment_id, namespace, channel, generation, x, session_id);

CREATE TABLE IF NOT EXISTS ${database}.points_image ON CLUSTER ${cluster} AS ${database}.points_image_local
ENGINE = Distributed(${cluster}, ${database}, points_image_local, sipHash64(experiment_id));
