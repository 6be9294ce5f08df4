import pendulum
from pathlib import Path
from tests.localaws.helpers import zip_bytes, lambda_role

def test_probe(run_dag, aws_client):
    lam = aws_client("lambda")
    lam.create_function(FunctionName="localaws-echo", Runtime="python3.12", Role=lambda_role(aws_client("iam")), Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": "def handler(e, c):\n    print('got', e)\n    return e\n"})})
    dr = run_dag(Path("tests/localaws/dags/localaws_lambda_ops.py"), "localaws_lambda_ops", pendulum.datetime(2013,1,5,tz="UTC"))
    print(dr.state)
    assert dr.state == "success"
