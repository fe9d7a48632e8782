-- The staging database behind the crm_staging connection, beside Airflow's metadata DB.
CREATE DATABASE crm_staging OWNER airflow;
