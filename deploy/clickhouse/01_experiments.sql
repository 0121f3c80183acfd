-- One row per experiment, written from its ExperimentCreated event.
-- created: Unix seconds.
CREATE TABLE IF NOT EXISTS experiments
(
    experiment_id String,
    project String,
    short_id String,
    number UInt64,
    name String,
    description String,
    owner String,
    hostname String,
    created Float64
)
ENGINE = ReplacingMergeTree
ORDER BY (project, number, experiment_id);

-- Other system properties recorded at creation: entrypoint, notebook, git and python details.
CREATE TABLE IF NOT EXISTS system_properties
(
    experiment_id String,
    key String,
    value String
)
ENGINE = ReplacingMergeTree
ORDER BY (experiment_id, key);
