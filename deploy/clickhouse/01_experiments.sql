-- One row per experiment, written from its ExperimentCreated event.
-- created: Unix seconds. system_keys/system_values: entrypoint, notebook, git and python details.
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
    created Float64,
    system_keys Array(String),
    system_values Array(String)
)
ENGINE = ReplacingMergeTree
ORDER BY (project, number, experiment_id);
