"""Translate a SAM template into the CloudFormation that AWS deploys, offline.

Usage: sam_translate.py TEMPLATE '{"Param": "value", ...}'  (JSON on stdout)

The SAM translator (aws-sam-translator) is what CloudFormation's
AWS::Serverless-2016-10-31 transform runs. It reads local CodeUri and
DefinitionUri only as S3 locations (sam package uploads them), so those are
replaced with s3:// URIs, and it asks IAM for managed policy ARNs through a
loader, which here knows none (the template uses none).
"""
import json
import os
import sys

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from cfnlint.decode import decode  # reads the YAML with its short-form tags
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    def load(self):
        return {}


def main():
    path, params = sys.argv[1], json.loads(sys.argv[2])
    template, problems = decode(path)
    if problems or template is None:
        sys.exit("decode %s: %s" % (path, problems))
    for res in template.get("Resources", {}).values():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = "s3://sam-translate/code.zip"
        if res.get("Type") == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            props["DefinitionUri"] = "s3://sam-translate/definition.json"
    out = transform(template, params, NoManagedPolicies())
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    main()
