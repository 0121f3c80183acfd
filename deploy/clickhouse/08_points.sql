-- Channel points, one table per value type. x: the point's coordinate; ts: Unix seconds.
-- The key makes a replayed point replace its twin; read with FINAL (or GROUP BY the key) when exact
-- counts matter before background merges have run.
CREATE TABLE IF NOT EXISTS points_numeric
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
ENGINE = ReplacingMergeTree
ORDER BY (experiment_id, namespace, channel, generation, x, session_id);

CREATE TABLE IF NOT EXISTS points_text
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
ENGINE = ReplacingMergeTree
ORDER BY (experiment_id, namespace, channel, generation, x, session_id);

-- Image bytes are in the object store under blobs/<sha256>.
CREATE TABLE IF NOT EXISTS points_image
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
ENGINE = ReplacingMergeTree
ORDER BY (experiment_id, namespace, channel, generation, x, session_id);
