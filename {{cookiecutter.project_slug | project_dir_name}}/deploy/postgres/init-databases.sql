-- The databases of the shared stack (docker-compose.yml), created once by the postgres image on an
-- empty data volume (/docker-entrypoint-initdb.d). MLflow and Dagster create their own tables.
-- All three belong to POSTGRES_USER here; on a shared server, give each its own role.
CREATE DATABASE mlflow;      -- MLflow's tracking store and model registry
CREATE DATABASE dagster;     -- Dagster's runs, event logs, schedules and sensors
CREATE DATABASE warehouse;   -- dbt's raw, staging and feature tables (DBT_TARGET=postgres)
