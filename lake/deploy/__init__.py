"""Deployment: provisioning the lake's AWS resources (:mod:`.provision`), building the Lambda
zip (:mod:`.package`), rendering the IAM policies (:mod:`.iam`) and the Amazon MWAA package
(:mod:`.mwaa`). Used by ``lake provision``, ``lake build lambda``, ``lake package mwaa`` and the
``lake_provision`` DAG; the daily DAGs do not import it."""
