#!/usr/bin/python3
"""Test-only oracle: botocore (python3-botocore) signs and serializes what the C++ tests give it.

  botocore_oracle.py sign < cases.jsonl
      each line {"method","url","headers":[[k,v]...],"body","amz_date","access_key","secret_key",
                 "token","region","service"} -> one line {"signature","canonical_request",
                 "string_to_sign","authorization"} computed by botocore.auth.SigV4Auth
  botocore_oracle.py serialize < cases.jsonl
      each line {"action", "params": <botocore input dict>} -> one line {"body": {flat wire params}}
      from botocore's EC2 serializer (botocore/serialize.py EC2Serializer), or {"error": ...} when
      botocore's validator refuses the input; with "our_body" also {"decoded": parse_qsl(our_body)}
"""
import json
import sys
import urllib.parse

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.serialize
import botocore.session
import botocore.validate


def sign(case):
    req = botocore.awsrequest.AWSRequest(method=case["method"], url=case["url"], data=case["body"].encode("utf-8"),
                                         headers=dict(case["headers"]))
    creds = botocore.credentials.Credentials(case["access_key"], case["secret_key"], case["token"] or None)
    signer = botocore.auth.SigV4Auth(creds, case["service"], case["region"])
    # add_auth without its clock: the timestamp is the case's.
    req.context["timestamp"] = case["amz_date"]
    signer._modify_request_before_signing(req)
    canonical = signer.canonical_request(req)
    sts = signer.string_to_sign(req, canonical)
    signature = signer.signature(sts, req)
    signer._inject_signature_to_request(req, signature)
    return {"signature": signature, "canonical_request": canonical, "string_to_sign": sts,
            "authorization": req.headers["Authorization"]}


def main():
    mode = sys.argv[1]
    model = botocore.session.get_session().get_service_model("ec2")
    serializer = botocore.serialize.create_serializer("ec2", include_validation=True)
    for line in sys.stdin:
        case = json.loads(line)
        if mode == "sign":
            out = sign(case)
        else:
            try:
                req = serializer.serialize_to_request(case["params"], model.operation_model(case["action"]))
                out = {"body": {k: str(v) for k, v in req["body"].items()}}
                if "our_body" in case:  # how a form parser reads the body we send
                    out["decoded"] = dict(urllib.parse.parse_qsl(case["our_body"], keep_blank_values=True,
                                                                 strict_parsing=True))
            except botocore.exceptions.ParamValidationError as e:
                out = {"error": str(e)}
        sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
