-- Parameters are fixed at creation. value is the stored text; type is 'double' or 'string'.
CREATE TABLE IF NOT EXISTS parameters
(
    experiment_id String,
    name String,
    value String,
    type String
)
ENGINE = ReplacingMergeTree
ORDER BY (experiment_id, name);
