"""localaws's stand-in for AWS Glue's ``awsglue`` library, for running unmodified Glue scripts
under local PySpark 3.5. Supported surface: docs/localaws.md. Anything else raises
NotImplementedError naming the method."""

from awsglue.dynamicframe import DynamicFrame  # noqa: F401
