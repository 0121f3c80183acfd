-- One row per experiment, written from its ExperimentCreated event.
-- created: Unix seconds.
CREATE TABLE IF NOT EXISTS ${database}.experiments_local ON CLUSTER ${cluster}
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (project, number, experiment_id);

CREATE TABLE IF NOT EXISTS ${database}.experiments ON CLUSTER ${cluster} AS ${database}.experiments_local
ENGINE = Distributed(${cluster}, ${database}, experiments_local, sipHash64(experiment_id));

-- Other system properties recorded at creation: entrypoint, notebook, git and python details.
CREATE TABLE IF NOT EXISTS ${database}.system_properties_local ON CLUSTER ${cluster}
(
    experiment_id String,
    key String,
    value String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (experiment_id, key);

CREATE TABLE IF NOT EXISTS ${database}.system_properties ON CLUSTER ${cluster} AS ${database}.system_properties_local
ENGINE = Distributed(${cluster}, ${database}, system_properties_local, sipHash64(experiment_id));
