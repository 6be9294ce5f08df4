-- Create a Glue/Athena database (one per layer: silver, gold). Params: database.
CREATE DATABASE IF NOT EXISTS {{ params.database }}
