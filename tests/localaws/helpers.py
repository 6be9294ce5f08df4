"""Helpers for localaws tests: deployment zips built from source text, IAM roles."""

from __future__ import annotations

import io
import zipfile


def zip_bytes(files: dict[str, str | bytes]) -> bytes:
    """A zip archive holding ``files`` (archive name -> content)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def lambda_role(iam) -> str:
    """ARN of a role Lambda functions can be created with (created once)."""
    try:
        return iam.get_role(RoleName="localaws-test-lambda")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName="localaws-test-lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]


def parquet_glue_table(s3, glue, duck, *, bucket: str, database: str, name: str, sql: str, local,
                       view: str | None = None) -> None:
    """Glue table ``database.name`` (classification parquet, columns as DuckDB types them: VARCHAR
    string, DOUBLE double, BIGINT bigint, DATE date, TIMESTAMP timestamp) over one Parquet file of ``sql``'s rows, written to
    ``local`` and put at ``s3://bucket/name/part-00000.parquet``; DuckDB view ``view`` (default
    ``src_<name>``) reads the local file, for the tests' hand-written oracles."""
    duck.execute(f"COPY ({sql}) TO '{local}' (FORMAT parquet)")
    s3.put_object(Bucket=bucket, Key=f"{name}/part-00000.parquet", Body=local.read_bytes())
    glue_types = {"VARCHAR": "string", "DOUBLE": "double", "BIGINT": "bigint", "DATE": "date",
                  "TIMESTAMP": "timestamp", "TIMESTAMP_NS": "timestamp"}
    columns = [{"Name": c, "Type": glue_types[t]} for c, t, *_ in
               duck.execute(f"DESCRIBE SELECT * FROM read_parquet('{local}')").fetchall()]
    glue.create_table(DatabaseName=database, TableInput={
        "Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet"},
        "StorageDescriptor": {"Columns": columns, "Location": f"s3://{bucket}/{name}/",
                              "SerdeInfo": {"SerializationLibrary":
                                            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}})
    duck.execute(f"CREATE VIEW {view or 'src_' + name} AS SELECT * FROM read_parquet('{local}')")
