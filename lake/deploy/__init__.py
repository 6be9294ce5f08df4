"""Deployment: provisioning the lake's AWS resources (:mod:`.provision`), building the Lambda
zip (:mod:`.package`) and rendering the IAM policies (:mod:`.iam`). Used by ``lake provision``,
``lake build lambda`` and the ``lake_provision`` DAG; the daily DAGs do not import it."""
