-- Every artifact write and delete (history). A path exists when its latest row has deleted = 0;
-- its bytes are in the object store under blobs/<sha256>.
CREATE TABLE IF NOT EXISTS artifacts
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
ENGINE = ReplacingMergeTree
ORDER BY (experiment_id, path, ts, session_id, seq);

-- Source files uploaded at creation; bytes under blobs/<sha256>.
CREATE TABLE IF NOT EXISTS sources
(
    experiment_id String,
    path String,
    sha256 String,
    size UInt64,
    mode UInt32,
    ts Float64
)
ENGINE = ReplacingMergeTree
ORDER BY (experiment_id, path);
