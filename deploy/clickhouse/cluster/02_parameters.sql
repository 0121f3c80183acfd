-- Parameters are fixed at creation. value is the stored text; type is 'double' or 'string'.
CREATE TABLE IF NOT EXISTS ${database}.parameters_local ON CLUSTER ${cluster}
(
    experiment_id String,
    name String,
    value String,
    type String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (experiment_id, name);

CREATE TABLE IF NOT EXISTS ${database}.parameters ON CLUSTER ${cluster} AS ${database}.parameters_local
ENGINE = Distributed(${cluster}, ${database}, parameters_local, sipHash64(experiment_id));
