#!/usr/bin/python3
"""A test-only stand-in for EC2 (Query API), STS (AssumeRoleWithWebIdentity) and the EC2 instance
metadata service (IMDSv2 role credentials), on one loopback HTTPS port.

It keeps the provider honest with code no one here wrote:
  - every EC2 request's SigV4 signature is recomputed with botocore (botocore.auth.SigV4Auth on an
    AWSRequest rebuilt from the wire) and a wrong one is refused with SignatureDoesNotMatch (403);
    keys it does not know get AuthFailure, a session token it issued that has expired ExpiredToken;
  - every request's parameters are checked against botocore's service model (the EC2 and STS
    input shapes, with EC2's flattening rules from botocore/serialize.py EC2Serializer); anything
    the model does not accept is answered 400 FakeModelViolation, which no real cloud sends, so a
    test sees it. CpuOptions.AmdSevSnp (enabled|disabled) is allowed although Debian's 2022 model
    predates it.
EC2 behaviour modelled: RunInstances (ClientToken idempotency, IdempotentParameterMismatch,
InvalidParameterCombination of SubnetId with NetworkInterface, SEV-SNP only on SNP types),
DescribeInstances (ids, filters incl. tag:, pagination with MaxResults/NextToken, unknown ids
InvalidInstanceID.NotFound), TerminateInstances, DescribeInstanceTypes, DescribeImages. Instances go
pending -> running after --run-delay-ms and shutting-down -> terminated after the same delay;
terminated instances stay visible, as on EC2. Errors come in EC2's XML envelope; throttling is
RequestLimitExceeded with HTTP 503.

Special images: ami-0stuck000000000000 never leaves pending; ami-0fails000000000000 goes to
terminated instead of running (stateReason Server.InternalError).
Run with Debian's /usr/bin/python3 (python3-botocore).
"""

import base64
import datetime
import json
import secrets
import threading
import time
import urllib.parse
import uuid

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.session

import fakecloud

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"

# name: (vCPUs, MiB, GPUs, GPU name, SEV-SNP)
INSTANCE_TYPES = {
    "m6a.large": (2, 8192, 0, "", True),
    "m6a.xlarge": (4, 16384, 0, "", True),
    "m6a.2xlarge": (8, 32768, 0, "", True),
    "c6a.large": (2, 4096, 0, "", True),
    "r6a.large": (2, 16384, 0, "", True),
    "t3.small": (2, 2048, 0, "", False),
    "g5.xlarge": (4, 16384, 1, "A10G", False),
    "p4d.24xlarge": (96, 1179648, 8, "A100", False),
}
IMAGES = {
    "ami-0123456789abcdef0": ("/dev/xvda", 8),
    "ami-0stuck000000000000": ("/dev/xvda", 8),
    "ami-0fails000000000000": ("/dev/xvda", 8),
}
LIVE = ("pending", "running", "stopping", "stopped")
STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def error_reply(status, code, message):
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>%s</Code><Message>%s</Message>"
            "</Error></Errors><RequestID>%s</RequestID></Response>" % (esc(code), esc(message), uuid.uuid4()))
    return fakecloud.Reply(status, body, content_type="text/xml;charset=UTF-8")


class ModelChecker:
    """Checks flat Query parameters against a botocore service model's input shape."""

    def __init__(self, service, ec2_rules):
        self.model = botocore.session.get_session().get_service_model(service)
        self.ec2 = ec2_rules

    def wire_name(self, name, shape):
        ser = shape.serialization
        if self.ec2:
            if "queryName" in ser:
                return ser["queryName"]
            if "name" in ser:
                return ser["name"][0].upper() + ser["name"][1:]
            return name
        return ser.get("name", name)

    def check(self, action, params):
        try:
            op = self.model.operation_model(action)
        except Exception:
            raise ApiError(400, "FakeModelViolation", "unknown action %s" % action)
        shape = op.input_shape
        present = set()
        for key, value in params.items():
            self.walk(shape, key.split("."), value, key, present)
        for member in shape.required_members:
            wire = self.wire_name(member, shape.members[member])
            if wire not in present:
                raise ApiError(400, "FakeModelViolation", "%s: required parameter %s missing" % (action, wire))

    def walk(self, shape, parts, value, key, present):
        t = shape.type_name
        if t == "structure":
            if not parts:
                raise ApiError(400, "FakeModelViolation", "%s: a structure given a value" % key)
            for name, member in shape.members.items():
                if self.wire_name(name, member) == parts[0]:
                    present.add(parts[0])
                    return self.walk(member, parts[1:], value, key, set())
            raise ApiError(400, "FakeModelViolation", "%s: the model has no member %s in %s" % (key, parts[0], shape.name))
        if t == "list":
            if self.ec2:
                index = parts[0] if parts else ""
                rest = parts[1:]
            else:  # Query protocol: Name.member.N unless flattened
                if shape.serialization.get("flattened"):
                    index, rest = (parts[0] if parts else ""), parts[1:]
                else:
                    if not parts or parts[0] != shape.member.serialization.get("name", "member"):
                        raise ApiError(400, "FakeModelViolation", "%s: list without .member" % key)
                    index, rest = (parts[1] if len(parts) > 1 else ""), parts[2:]
            if not index.isdigit() or int(index) < 1:
                raise ApiError(400, "FakeModelViolation", "%s: list index must be 1, 2, ..." % key)
            return self.walk(shape.member, rest, value, key, set())
        if parts:
            raise ApiError(400, "FakeModelViolation", "%s: %s is a %s, not a structure" % (key, shape.name, t))
        if t in ("integer", "long"):
            try:
                n = int(value)
            except ValueError:
                raise ApiError(400, "FakeModelViolation", "%s: '%s' is not an integer" % (key, value))
            if "min" in shape.metadata and n < shape.metadata["min"]:
                raise ApiError(400, "FakeModelViolation", "%s: below the minimum" % key)
        elif t == "boolean":
            if value not in ("true", "false"):
                raise ApiError(400, "FakeModelViolation", "%s: '%s' is not true or false" % (key, value))
        elif t == "string":
            if "min" in shape.metadata and len(value) < shape.metadata["min"]:
                raise ApiError(400, "FakeModelViolation", "%s: shorter than the model's minimum" % key)
            if "max" in shape.metadata and len(value) > shape.metadata["max"]:
                raise ApiError(400, "FakeModelViolation", "%s: longer than the model's maximum" % key)


class Ec2Cloud(fakecloud.Cloud):
    def __init__(self, args):
        super().__init__(args)
        self.ec2_model = ModelChecker("ec2", True)
        self.sts_model = ModelChecker("sts", False)
        self.keys = {args.access_key: (args.secret_key, "", None)}  # id -> (secret, token, expiry)
        self.instances_by_id = {}
        self.order = []
        self.tokens = {}  # ClientToken -> (params signature, instance id)
        self.seen_tokens = []  # ClientToken of every RunInstances call, in order
        self.imds_tokens = set()
        self.issued = 0
        self.auth_failures = 0
        self.stop_event = threading.Event()
        threading.Thread(target=self.ticker, daemon=True).start()

    # --- plumbing -------------------------------------------------------------------------------
    def form(self, req):
        if req.method != "POST":
            return {}
        return dict(urllib.parse.parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))

    def action_of(self, req):
        path = req.path.split("?")[0]
        if path.startswith("/latest/api/token"):
            return "IMDS token"
        if path.startswith("/latest/meta-data/iam/"):
            return "IMDS credentials"
        if path.startswith("/latest/meta-data/"):
            return "IMDS node"
        form = self.form(req)
        action = form.get("Action", req.method + " " + path)
        if action == "RunInstances":
            with self.lock:
                self.seen_tokens.append(form.get("ClientToken", ""))
        return action

    def throttle_reply(self, req):
        return error_reply(503, "RequestLimitExceeded", "Request limit exceeded.")

    def instances(self):
        with self.lock:
            return [{"id": i["id"], "name": i["tags"].get("Name", ""), "state": i["state"], "ip": i["ip"],
                     "public_ip": i["public_ip"], "type": i["type"], "image": i["image"], "tags": i["tags"],
                     "user_data": i["user_data"].decode("latin-1"),
                     "params": {k: v for k, v in i["params"].items() if k != "UserData"}}
                    for i in (self.instances_by_id[x] for x in self.order) if i["state"] in LIVE]

    def stats(self):
        s = super().stats()
        with self.lock:
            s["client_tokens"] = list(self.seen_tokens)
            s["issued_credentials"] = self.issued
            s["auth_failures"] = self.auth_failures
            s["terminated"] = [x for x in self.order if self.instances_by_id[x]["state"] == "terminated"]
        return s

    def ticker(self):
        """Moves instances through their states after --run-delay-ms."""
        delay = self.args.run_delay_ms / 1000.0
        while True:
            time.sleep(0.02)
            started, stopped = [], []
            now = time.monotonic()
            with self.lock:
                for inst in self.instances_by_id.values():
                    if now - inst["since"] < delay:
                        continue
                    if inst["state"] == "pending" and inst["image"] != "ami-0stuck000000000000":
                        if inst["image"] == "ami-0fails000000000000":
                            inst["state"], inst["reason"] = "terminated", "Server.InternalError: Internal error on launch"
                        else:
                            inst["state"], inst["started"] = "running", True
                            started.append(inst)
                        inst["since"] = now
                    elif inst["state"] == "shutting-down":
                        inst["state"], inst["since"] = "terminated", now
                        if inst.get("started"):  # only an instance that ran has processes to stop
                            stopped.append(inst)
            for inst in started:
                self.run_instance(inst["ip"], inst["user_data"])
            for inst in stopped:
                self.stop_instance(inst["ip"])

    # --- dispatch -------------------------------------------------------------------------------
    def handle(self, req):
        try:
            path = req.path.split("?")[0]
            if path.startswith("/latest/"):
                return self.imds(req, path)
            form = self.form(req)
            action = form.get("Action", "")
            if action == "AssumeRoleWithWebIdentity":
                return self.sts(form)
            if req.method != "POST" or path != "/":
                raise ApiError(400, "InvalidAction", "EC2 takes POST / with a form body")
            self.authenticate(req)
            if form.get("Version") != "2016-11-15":
                raise ApiError(400, "FakeModelViolation", "Version must be 2016-11-15")
            params = {k: v for k, v in form.items() if k not in ("Action", "Version")}
            sev = params.pop("CpuOptions.AmdSevSnp", None)
            if sev is not None and sev not in ("enabled", "disabled"):
                raise ApiError(400, "FakeModelViolation", "CpuOptions.AmdSevSnp must be enabled or disabled")
            self.ec2_model.check(action, params)
            if sev is not None:
                params["CpuOptions.AmdSevSnp"] = sev
            handler = {"RunInstances": self.run_instances, "DescribeInstances": self.describe_instances,
                       "TerminateInstances": self.terminate_instances,
                       "DescribeInstanceTypes": self.describe_instance_types,
                       "DescribeImages": self.describe_images}.get(action)
            if handler is None:
                raise ApiError(400, "InvalidAction", "the fake does not implement %s" % action)
            with self.lock:
                body = handler(params)
            return fakecloud.Reply(200, body, content_type="text/xml;charset=UTF-8")
        except ApiError as e:
            return error_reply(e.status, e.code, e.message)

    # --- SigV4, checked by botocore ---------------------------------------------------------------
    def authenticate(self, req):
        auth = req.headers.get("Authorization", "")
        try:
            algo, rest = auth.split(" ", 1)
            fields = dict(p.strip().split("=", 1) for p in rest.split(","))
            akid, date, region, service, term = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            assert algo == "AWS4-HMAC-SHA256" and term == "aws4_request"
        except Exception:
            with self.lock:
                self.auth_failures += 1
            raise ApiError(401, "IncompleteSignature", "no valid AWS4-HMAC-SHA256 Authorization header")
        with self.lock:
            key = self.keys.get(akid)
        if key is None:
            with self.lock:
                self.auth_failures += 1
            raise ApiError(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
        secret, token, expiry = key
        if token:
            if req.headers.get("X-Amz-Security-Token") != token or "x-amz-security-token" not in signed:
                with self.lock:
                    self.auth_failures += 1
                raise ApiError(401, "AuthFailure", "the security token is missing, unsigned or wrong")
            if expiry is not None and time.time() >= expiry:
                raise ApiError(400, "ExpiredToken", "The security token included in the request is expired")
        amz_date = req.headers.get("X-Amz-Date", "")
        if "host" not in signed or "x-amz-date" not in signed:
            raise ApiError(403, "SignatureDoesNotMatch", "host and x-amz-date must be signed")
        if region != self.args.region or service != "ec2" or amz_date[:8] != date:
            raise ApiError(403, "SignatureDoesNotMatch", "credential scope %s/%s/%s is wrong" % (date, region, service))
        try:
            when = datetime.datetime.strptime(amz_date, botocore.auth.SIGV4_TIMESTAMP)
        except ValueError:
            raise ApiError(403, "SignatureDoesNotMatch", "X-Amz-Date is malformed")
        if abs((datetime.datetime.utcnow() - when).total_seconds()) > 300:
            raise ApiError(400, "RequestExpired", "Request has expired")
        # botocore signs what it is given: rebuild the request with the headers the client says it
        # signed (add_auth adds X-Amz-Date and X-Amz-Security-Token itself), at the client's time.
        headers = {}
        for name, value in req.headers.items():
            if name.lower() in signed and name.lower() not in ("x-amz-date", "x-amz-security-token", "authorization"):
                headers[name] = value
        aws_req = botocore.awsrequest.AWSRequest(method=req.method, url="https://%s%s" % (req.headers.get("Host"), req.path),
                                                 data=req.body, headers=headers)
        signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(akid, secret, token or None), service, region)
        aws_req.context["timestamp"] = amz_date
        signer._modify_request_before_signing(aws_req)
        canonical = signer.canonical_request(aws_req)
        signature = signer.signature(signer.string_to_sign(aws_req, canonical), aws_req)
        wanted_headers = signer.signed_headers(signer.headers_to_sign(aws_req))
        if signature != fields.get("Signature") or wanted_headers != fields["SignedHeaders"]:
            with self.lock:
                self.auth_failures += 1
            raise ApiError(403, "SignatureDoesNotMatch",
                           "The request signature we calculated does not match the signature you provided")

    def issue(self):
        akid = "ASIA" + secrets.token_hex(8).upper()
        secret = secrets.token_urlsafe(30)
        token = secrets.token_urlsafe(60)
        expiry = time.time() + self.args.credential_lifetime
        with self.lock:
            self.keys[akid] = (secret, token, expiry)
            self.issued += 1
        exp = datetime.datetime.utcfromtimestamp(expiry).strftime("%Y-%m-%dT%H:%M:%SZ")
        return akid, secret, token, exp

    # --- STS --------------------------------------------------------------------------------------
    def sts(self, form):
        if form.get("Version") != "2011-06-15":
            raise ApiError(400, "FakeModelViolation", "STS Version must be 2011-06-15")
        params = {k: v for k, v in form.items() if k not in ("Action", "Version")}
        self.sts_model.check("AssumeRoleWithWebIdentity", params)
        if params["WebIdentityToken"] != self.args.web_identity_token:
            raise ApiError(400, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider")
        if not params["RoleArn"].startswith("arn:aws:iam::"):
            raise ApiError(400, "ValidationError", "RoleArn is not an IAM role ARN")
        akid, secret, token, exp = self.issue()
        body = ("<AssumeRoleWithWebIdentityResponse xmlns=\"%s\"><AssumeRoleWithWebIdentityResult>"
                "<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
                "<SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>"
                "<SubjectFromWebIdentityToken>system:serviceaccount:peerpods:cloud-api-adaptor</SubjectFromWebIdentityToken>"
                "<AssumedRoleUser><Arn>%s/%s</Arn><AssumedRoleId>AROAFAKE:%s</AssumedRoleId></AssumedRoleUser>"
                "</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>"
                "</AssumeRoleWithWebIdentityResponse>" % (
                    STS_NS, akid, esc(secret), esc(token), exp, esc(params["RoleArn"]), esc(params["RoleSessionName"]),
                    esc(params["RoleSessionName"]), uuid.uuid4()))
        return fakecloud.Reply(200, body, content_type="text/xml")

    # --- IMDSv2 -----------------------------------------------------------------------------------
    def imds(self, req, path):
        if path == "/latest/api/token":
            if req.method != "PUT" or not req.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return fakecloud.Reply(400, "", content_type="text/plain")
            token = secrets.token_urlsafe(32)
            with self.lock:
                self.imds_tokens.add(token)
            return fakecloud.Reply(200, token, content_type="text/plain")
        with self.lock:
            ok = req.headers.get("X-aws-ec2-metadata-token") in self.imds_tokens
        if not ok:
            return fakecloud.Reply(401, "", content_type="text/plain")
        node = {  # the node the adaptor runs on, as CAA reads it when its configuration is partial
            "/latest/meta-data/placement/region": self.args.region,
            "/latest/meta-data/mac": "0e:00:00:00:00:01",
            "/latest/meta-data/network/interfaces/macs/0e:00:00:00:00:01/subnet-id": "subnet-0feedfacefeedface",
            "/latest/meta-data/network/interfaces/macs/0e:00:00:00:00:01/security-group-ids":
                "sg-0aaaaaaaaaaaaaaaa\nsg-0bbbbbbbbbbbbbbbb",
            "/latest/meta-data/public-keys": "0=node-key",
        }
        if path in node:
            return fakecloud.Reply(200, node[path], content_type="text/plain")
        base = "/latest/meta-data/iam/security-credentials/"
        if path == base:
            return fakecloud.Reply(200, self.args.imds_role, content_type="text/plain")
        if path == base + self.args.imds_role:
            akid, secret, token, exp = self.issue()
            return fakecloud.Reply(200, json.dumps({
                "Code": "Success", "LastUpdated": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Type": "AWS-HMAC", "AccessKeyId": akid, "SecretAccessKey": secret, "Token": token,
                "Expiration": exp}), content_type="text/plain")
        return fakecloud.Reply(404, "", content_type="text/plain")

    # --- EC2 actions (called with self.lock held) --------------------------------------------------
    def run_instances(self, p):
        if p.get("MinCount") != "1" or p.get("MaxCount") != "1":
            raise ApiError(400, "InvalidParameterValue", "the fake launches one instance per call")
        token = p.get("ClientToken", "")
        fingerprint = json.dumps(sorted((k, v) for k, v in p.items() if k != "ClientToken"))
        if token and token in self.tokens:
            seen, iid = self.tokens[token]
            if seen != fingerprint:
                raise ApiError(400, "IdempotentParameterMismatch", "ClientToken reused with different parameters")
            return self.instances_xml("RunInstancesResponse", [self.instances_by_id[iid]], reservation=True)
        image = p.get("ImageId", "")
        if not image.startswith("ami-"):
            raise ApiError(400, "InvalidAMIID.Malformed", "Invalid id: \"%s\"" % image)
        if image not in IMAGES:
            raise ApiError(400, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist" % image)
        itype = p.get("InstanceType", "m1.small")
        if itype not in INSTANCE_TYPES:
            raise ApiError(400, "InvalidParameterValue", "Invalid value '%s' for InstanceType." % itype)
        if "SubnetId" in p or any(k.startswith("SecurityGroupId.") for k in p):
            if any(k.startswith("NetworkInterface.") for k in p):
                raise ApiError(400, "InvalidParameterCombination",
                               "Network interfaces and an instance-level subnet ID or security groups may not be specified on the same request")
        if p.get("CpuOptions.AmdSevSnp") == "enabled" and not INSTANCE_TYPES[itype][4]:
            raise ApiError(400, "UnsupportedOperation", "The instance type %s does not support AMD SEV-SNP." % itype)
        tags = {}
        i = 1
        while "TagSpecification.1.Tag.%d.Key" % i in p:
            tags[p["TagSpecification.1.Tag.%d.Key" % i]] = p.get("TagSpecification.1.Tag.%d.Value" % i, "")
            i += 1
        try:
            user_data = base64.b64decode(p.get("UserData", ""), validate=True)
        except Exception:
            raise ApiError(400, "InvalidParameterValue", "Invalid BASE64 encoding of user data")
        if len(user_data) > 16384:
            raise ApiError(400, "InvalidParameterValue", "User data is limited to 16384 bytes")
        iid = "i-" + secrets.token_hex(9)[:17]
        ip = self.new_ip()
        inst = {"id": iid, "state": "pending", "since": time.monotonic(), "image": image, "type": itype,
                "ip": ip, "public_ip": ip if p.get("NetworkInterface.1.AssociatePublicIpAddress") == "true" else "",
                "tags": tags, "user_data": user_data, "token": token, "reason": "",
                "reservation": "r-" + secrets.token_hex(9)[:17], "params": p}
        self.instances_by_id[iid] = inst
        self.order.append(iid)
        if token:
            self.tokens[token] = (fingerprint, iid)
        return self.instances_xml("RunInstancesResponse", [inst], reservation=True)

    def filters(self, p):
        out = []
        n = 1
        while "Filter.%d.Name" % n in p:
            values = []
            m = 1
            while "Filter.%d.Value.%d" % (n, m) in p:
                values.append(p["Filter.%d.Value.%d" % (n, m)])
                m += 1
            out.append((p["Filter.%d.Name" % n], values))
            n += 1
        return out

    def matches(self, inst, name, values):
        if name == "instance-id":
            return inst["id"] in values
        if name == "instance-state-name":
            return inst["state"] in values
        if name == "client-token":
            return inst["token"] in values
        if name == "instance-type":
            return inst["type"] in values
        if name == "tag-key":
            return any(k in values for k in inst["tags"])
        if name.startswith("tag:"):
            return inst["tags"].get(name[4:]) in values
        raise ApiError(400, "InvalidParameterValue", "The filter '%s' is invalid" % name)

    def describe_instances(self, p):
        ids = [v for k, v in sorted(p.items()) if k.startswith("InstanceId.")]
        if ids and "MaxResults" in p:
            raise ApiError(400, "InvalidParameterCombination",
                           "The parameter instancesSet cannot be used with the parameter maxResults")
        if ids:
            unknown = [i for i in ids if i not in self.instances_by_id]
            if unknown:
                raise ApiError(400, "InvalidInstanceID.NotFound",
                               "The instance ID%s '%s' do%s not exist" % (
                                   "s" if len(unknown) > 1 else "", ", ".join(unknown), "" if len(unknown) > 1 else "es"))
        page = self.args.page_size
        if "MaxResults" in p:
            n = int(p["MaxResults"])
            if n < 5 or n > 1000:
                raise ApiError(400, "InvalidParameterValue", "MaxResults must be between 5 and 1000")
            page = min(page, n) if page else n
        found = [self.instances_by_id[x] for x in self.order if not ids or x in ids]
        for name, values in self.filters(p):
            found = [i for i in found if self.matches(i, name, values)]
        start = 0
        if p.get("NextToken"):
            try:
                start = int(base64.b64decode(p["NextToken"]).decode())
            except Exception:
                raise ApiError(400, "InvalidParameterValue", "Invalid NextToken")
        nxt = ""
        if page and not ids and start + page < len(found):
            nxt = base64.b64encode(str(start + page).encode()).decode()
            found = found[start:start + page]
        else:
            found = found[start:]
        return self.instances_xml("DescribeInstancesResponse", found, reservation=False, next_token=nxt)

    def terminate_instances(self, p):
        ids = [v for k, v in sorted(p.items()) if k.startswith("InstanceId.")]
        for i in ids:
            if not i.startswith("i-"):
                raise ApiError(400, "InvalidInstanceID.Malformed", "Invalid id: \"%s\"" % i)
        unknown = [i for i in ids if i not in self.instances_by_id]
        if unknown:
            raise ApiError(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist" % ", ".join(unknown))
        items = ""
        for i in ids:
            inst = self.instances_by_id[i]
            before = inst["state"]
            if before not in ("shutting-down", "terminated"):
                inst["state"], inst["since"] = "shutting-down", time.monotonic()
            items += ("<item><instanceId>%s</instanceId><currentState><code>%d</code><name>%s</name></currentState>"
                      "<previousState><code>%d</code><name>%s</name></previousState></item>" % (
                          i, STATE_CODES[inst["state"]], inst["state"], STATE_CODES[before], before))
        return ("<TerminateInstancesResponse xmlns=\"%s\"><requestId>%s</requestId><instancesSet>%s</instancesSet>"
                "</TerminateInstancesResponse>" % (EC2_NS, uuid.uuid4(), items))

    def describe_instance_types(self, p):
        names = [v for k, v in sorted(p.items()) if k.startswith("InstanceType.")] or list(INSTANCE_TYPES)
        unknown = [n for n in names if n not in INSTANCE_TYPES]
        if unknown:
            raise ApiError(400, "InvalidInstanceType", "The following supplied instance types do not exist: [%s]" % ", ".join(unknown))
        items = ""
        for n in names:
            vcpus, mib, gpus, gpu, snp = INSTANCE_TYPES[n]
            gpu_xml = ("<gpuInfo><gpus><item><name>%s</name><manufacturer>NVIDIA</manufacturer><count>%d</count>"
                       "</item></gpus></gpuInfo>" % (gpu, gpus)) if gpus else ""
            features = "<item>amd-sev-snp</item>" if snp else ""
            items += ("<item><instanceType>%s</instanceType><vCpuInfo><defaultVCpus>%d</defaultVCpus></vCpuInfo>"
                      "<memoryInfo><sizeInMiB>%d</sizeInMiB></memoryInfo>%s<processorInfo><supportedArchitectures>"
                      "<item>x86_64</item></supportedArchitectures><supportedFeatures>%s</supportedFeatures>"
                      "</processorInfo></item>" % (n, vcpus, mib, gpu_xml, features))
        return ("<DescribeInstanceTypesResponse xmlns=\"%s\"><requestId>%s</requestId><instanceTypeSet>%s"
                "</instanceTypeSet></DescribeInstanceTypesResponse>" % (EC2_NS, uuid.uuid4(), items))

    def describe_images(self, p):
        ids = [v for k, v in sorted(p.items()) if k.startswith("ImageId.")]
        for i in ids:
            if not i.startswith("ami-"):
                raise ApiError(400, "InvalidAMIID.Malformed", "Invalid id: \"%s\"" % i)
            if i not in IMAGES:
                raise ApiError(400, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist" % i)
        items = ""
        for i in ids or list(IMAGES):
            dev, size = IMAGES[i]
            items += ("<item><imageId>%s</imageId><imageState>available</imageState><bootMode>uefi</bootMode>"
                      "<rootDeviceType>ebs</rootDeviceType><rootDeviceName>%s</rootDeviceName><blockDeviceMapping>"
                      "<item><deviceName>%s</deviceName><ebs><volumeSize>%d</volumeSize><volumeType>gp3</volumeType>"
                      "</ebs></item></blockDeviceMapping></item>" % (i, dev, dev, size))
        return ("<DescribeImagesResponse xmlns=\"%s\"><requestId>%s</requestId><imagesSet>%s</imagesSet>"
                "</DescribeImagesResponse>" % (EC2_NS, uuid.uuid4(), items))

    def instances_xml(self, root, insts, reservation, next_token=""):
        def item(i):
            tags = "".join("<item><key>%s</key><value>%s</value></item>" % (esc(k), esc(v)) for k, v in i["tags"].items())
            ip = "" if i["state"] == "terminated" else i["ip"]
            public = "<ipAddress>%s</ipAddress>" % i["public_ip"] if i["public_ip"] and i["state"] == "running" else ""
            reason = ("<stateReason><code>%s</code><message>%s</message></stateReason>" % (
                esc(i["reason"].split(":")[0]), esc(i["reason"]))) if i["reason"] else ""
            return ("<item><instanceId>%s</instanceId><imageId>%s</imageId><instanceState><code>%d</code>"
                    "<name>%s</name></instanceState><instanceType>%s</instanceType>%s%s%s<tagSet>%s</tagSet>"
                    "<networkInterfaceSet><item><privateIpAddress>%s</privateIpAddress></item></networkInterfaceSet>"
                    "</item>" % (i["id"], i["image"], STATE_CODES[i["state"]], i["state"], i["type"],
                                 "<privateIpAddress>%s</privateIpAddress>" % ip if ip else "", public, reason, tags, ip))
        if reservation:
            return ("<%s xmlns=\"%s\"><requestId>%s</requestId><reservationId>%s</reservationId><ownerId>123456789012"
                    "</ownerId><groupSet/><instancesSet>%s</instancesSet></%s>" % (
                        root, EC2_NS, uuid.uuid4(), insts[0]["reservation"], "".join(item(i) for i in insts), root))
        reservations = "".join(
            "<item><reservationId>%s</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>%s"
            "</instancesSet></item>" % (i["reservation"], item(i)) for i in insts)
        nt = "<nextToken>%s</nextToken>" % next_token if next_token else ""
        return "<%s xmlns=\"%s\"><requestId>%s</requestId><reservationSet>%s</reservationSet>%s</%s>" % (
            root, EC2_NS, uuid.uuid4(), reservations, nt, root)


def main():
    p = fakecloud.arg_parser("EC2, STS and IMDS fake")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--access-key", default="AKIDFAKEEXAMPLE")
    p.add_argument("--secret-key", default="fake/secret/key+for/tests")
    p.add_argument("--run-delay-ms", type=float, default=200, help="pending -> running (and shutting-down -> terminated)")
    p.add_argument("--page-size", type=int, default=0, help="at most this many instances per DescribeInstances page")
    p.add_argument("--credential-lifetime", type=float, default=3600, help="seconds STS/IMDS credentials live")
    p.add_argument("--web-identity-token", default="fake-web-identity-token")
    p.add_argument("--imds-role", default="peerpods-role")
    fakecloud.serve(Ec2Cloud(p.parse_args()))


if __name__ == "__main__":
    main()
