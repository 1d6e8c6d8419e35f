#!/usr/bin/python3
"""A test-only stand-in for Compute Engine (REST v1), Google's OAuth token endpoint and the GCE
metadata server, strict about what the gcp provider sends.

  POST /token                          JWT-bearer grant (RFC 7523): the assertion's RS256 signature is
                                       checked against --sa-public-key, and its claims (iss, aud, scope,
                                       iat, exp at most 1 h later); answers a bearer token that expires
                                       after --token-expires-in seconds
  GET  /computeMetadata/v1/instance/service-accounts/default/token   (Metadata-Flavor: Google)
  /compute/v1/projects/{project}/...   projects.get, images.get, machineTypes.get, instances.insert /
                                       list / get / delete, zoneOperations.get / wait; every call needs a
                                       token this fake issued and that has not expired (401 otherwise)

Operations go PENDING -> RUNNING -> DONE over --op-polls polls (GET or /wait); an inserted instance
is PROVISIONING, STAGING once its operation is DONE, then RUNNING after --boot-polls observations
(list or get). requestId makes insert and delete idempotent. Bodies are checked field by field
(name, machineType form, disks, metadata, labels, confidentialInstanceConfig against the machine
series, scheduling) and refused with 400 and a Google error body, as the real API does.

Action names (for faults and the call counters in /_fake/stats): token, metadata.token, projects.get,
images.get, machineTypes.get, instances.insert, instances.list, instances.get, instances.delete,
zoneOperations.get, zoneOperations.wait, control.

Test controls (besides fakecloud's /_fake/ faults and stats):
  POST /_gce/config  {"stuck": "<regex>"           names matching never reach RUNNING,
                      "exhausted": ["zone/type"...]  inserts of these fail in their DONE operation
                                                     with ZONE_RESOURCE_POOL_EXHAUSTED,
                      "page_size": N}                list pages of at most N items
  POST /_gce/revoke  every token issued so far stops working (as an expired one does)
"""

import base64
import json
import os
import re
import secrets
import sys
import time
import urllib.parse
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from a test run
import fakecloud  # noqa: E402

NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
META_KEY_RE = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
ALLOWED_SCOPES = {"https://www.googleapis.com/auth/compute", "https://www.googleapis.com/auth/cloud-platform"}
DISK_TYPES = {"pd-standard", "pd-ssd", "pd-balanced", "pd-extreme"}
INSTANCE_FIELDS = {"name", "machineType", "disks", "networkInterfaces", "metadata", "labels",
                   "confidentialInstanceConfig", "scheduling", "minCpuPlatform", "description"}

# name -> (vCPUs, memory MiB, H100 GPUs)
MACHINE_TYPES = {
    "e2-medium": (2, 4096, 0), "e2-standard-4": (4, 16384, 0),
    "n2d-standard-2": (2, 8192, 0), "n2d-standard-4": (4, 16384, 0), "n2d-standard-8": (8, 32768, 0),
    "c3-standard-4": (4, 16384, 0), "c3-standard-8": (8, 32768, 0),
    "a3-highgpu-1g": (26, 239616, 1), "custom-fake-6": (6, 12288, 0),
}


def google_error(code, reason, message, status=None, headers=None):
    statuses = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}
    body = {"error": {"code": code, "message": message,
                      "errors": [{"domain": "global", "reason": reason, "message": message}],
                      "status": status or statuses.get(code, "UNKNOWN")}}
    return fakecloud.Reply(code, json.dumps(body), headers)


class BadRequest(Exception):
    pass


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class GceCloud(fakecloud.Cloud):
    def __init__(self, args):
        super().__init__(args)
        from cryptography.hazmat.primitives import serialization
        if args.sa_public_key:
            with open(args.sa_public_key, "rb") as f:
                self.sa_key = serialization.load_pem_public_key(f.read())
        else:
            self.sa_key = None  # made by write_key() once the port is known
        self.tokens = {}  # token -> expiry (monotonic)
        self.instances_by_key = {}  # (zone, name) -> dict
        self.operations = {}  # name -> dict
        self.request_ids = {}  # requestId -> operation name
        self.next_id = 1000000000000000000
        self.config = {"stuck": "", "exhausted": [], "page_size": 500}
        self.model = None
        self.runner_queue = []  # instance runner calls, made after the lock is released
        if args.model:
            # Google's own model of the API (compute_model.py): field names, types, enum values.
            import importlib.util
            spec = importlib.util.spec_from_file_location(
                "compute_model", os.path.join(os.path.dirname(os.path.abspath(args.model)), "..", "compute_model.py"))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self.model = (module, module.parse(args.model))

    # --- fakecloud hooks ------------------------------------------------------------------------
    def action_of(self, req):
        path = req.path.split("?")[0]
        if path == "/token":
            return "token"
        if path.startswith("/computeMetadata/"):
            return "metadata.token"
        if path.startswith("/_gce/"):
            return "control"
        parts = path.split("/")[3:]  # after /compute/v1
        if len(parts) == 2:
            return "projects.get"
        if len(parts) >= 5 and parts[2] == "global" and parts[3] == "images":
            return "images.get"
        if len(parts) >= 5 and parts[2] == "zones":
            kind = parts[4]
            if kind == "machineTypes":
                return "machineTypes.get"
            if kind == "operations":
                return "zoneOperations.wait" if path.endswith("/wait") else "zoneOperations.get"
            if kind == "instances":
                if req.method == "POST":
                    return "instances.insert"
                if req.method == "DELETE":
                    return "instances.delete"
                return "instances.get" if len(parts) > 5 else "instances.list"
        return req.method + " " + path

    def throttle_reply(self, req):
        return google_error(429, "rateLimitExceeded", "Rate Limit Exceeded", headers={"Retry-After": "1"})

    def instances(self):
        with self.lock:
            return [{"name": i["name"], "zone": i["zone"].rsplit("/", 1)[-1], "status": i["status"],
                     "machine_type": i["machineType"].rsplit("/", 1)[-1],
                     "confidential": (i.get("confidentialInstanceConfig") or {}).get("confidentialInstanceType", ""),
                     "labels": i.get("labels", {}), "ip": i["networkInterfaces"][0]["networkIP"]}
                    for i in self.instances_by_key.values()]

    # --- dispatch -------------------------------------------------------------------------------
    def handle(self, req):
        url = urllib.parse.urlsplit(req.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        path = url.path
        if path == "/_gce/config" and req.method == "POST":
            with self.lock:
                self.config.update(json.loads(req.body or b"{}"))
            return fakecloud.Reply(200, json.dumps(self.config))
        if path == "/_gce/revoke" and req.method == "POST":
            with self.lock:
                self.tokens.clear()
            return fakecloud.Reply(200, "{}")
        if path == "/token" and req.method == "POST":
            return self.token_grant(req)
        if path == "/computeMetadata/v1/instance/service-accounts/default/token" and req.method == "GET":
            if req.headers.get("Metadata-Flavor") != "Google":
                return fakecloud.Reply(403, "Missing Metadata-Flavor:Google header.", content_type="text/html")
            return self.issue_token()
        if not path.startswith("/compute/v1/projects/"):
            return google_error(404, "notFound", "Not Found")
        auth = req.headers.get("Authorization", "")
        with self.lock:
            expiry = self.tokens.get(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None
        if expiry is None or expiry <= time.monotonic():
            return google_error(401, "authError", "Request had invalid authentication credentials. Expected OAuth 2 "
                                "access token, login cookie or other valid authentication credential.")
        parts = path.split("/")[3:]
        if parts[1] != self.args.project:
            return google_error(404, "notFound", "The resource 'projects/%s' was not found" % parts[1])
        try:
            return self.compute(req, parts, query)
        except NotFoundError as e:
            return google_error(404, "notFound", str(e))
        except BadRequest as e:
            return google_error(400, "invalid", str(e))
        finally:
            self.drain_runner()

    def drain_runner(self):
        """Starts and stops instances' processes (--runner) outside the lock: a slow runner must
        not stall every other call."""
        with self.lock:
            queue, self.runner_queue = self.runner_queue, []
        for kind, ip, user_data in queue:
            if kind == "start":
                self.run_instance(ip, user_data)
            else:
                self.stop_instance(ip)

    # --- OAuth ----------------------------------------------------------------------------------
    def issue_token(self):
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.args.token_expires_in
        return fakecloud.Reply(200, json.dumps({"access_token": token, "expires_in": self.args.token_expires_in,
                                                "token_type": "Bearer"}))

    def token_grant(self, req):
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def refuse(why):
            return fakecloud.Reply(400, json.dumps({"error": "invalid_grant", "error_description": why}))

        if req.headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
            return refuse("Bad Request")
        form = dict(urllib.parse.parse_qsl(req.body.decode()))
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return fakecloud.Reply(400, json.dumps({"error": "unsupported_grant_type",
                                                    "error_description": "Invalid grant_type"}))
        parts = form.get("assertion", "").split(".")
        if len(parts) != 3:
            return refuse("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except ValueError:
            return refuse("Invalid JWT")
        if header.get("alg") != "RS256" or header.get("typ") != "JWT":
            return refuse("Invalid JWT header")
        if self.sa_key is None:
            return refuse("Invalid JWT Signature.")  # --write-key has not made the key yet
        try:
            self.sa_key.verify(signature, (parts[0] + "." + parts[1]).encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return refuse("Invalid JWT Signature.")
        now = time.time()
        own_uri = "https://127.0.0.1:%d/token" % req.handler.server.server_address[1]
        if claims.get("iss") != self.args.sa_email:
            return refuse("Invalid JWT: iss is not a known service account")
        if claims.get("aud") not in (GOOGLE_TOKEN_URI, own_uri):
            return refuse("Invalid JWT: audience")
        if claims.get("scope") not in ALLOWED_SCOPES:
            return refuse("Invalid JWT: scope")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or iat > now + 60 or exp <= now or exp - iat > 3600:
            return refuse("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
        return self.issue_token()

    # --- Compute --------------------------------------------------------------------------------
    def compute(self, req, parts, query):
        project = parts[1]
        if len(parts) == 2 and req.method == "GET":
            return fakecloud.Reply(200, json.dumps({"kind": "compute#project", "name": project, "id": "4242"}))
        if len(parts) == 5 and parts[2] == "global" and parts[3] == "images" and req.method == "GET":
            gb = self.images().get(parts[4])
            if gb is None:
                return google_error(404, "notFound", "The resource 'projects/%s/global/images/%s' was not found"
                                    % (project, parts[4]))
            return fakecloud.Reply(200, json.dumps({"kind": "compute#image", "name": parts[4], "diskSizeGb": str(gb),
                                                    "status": "READY"}))
        if len(parts) < 5 or parts[2] != "zones":
            return google_error(404, "notFound", "Not Found")
        zone, kind, rest = parts[3], parts[4], parts[5:]
        if not re.match(r"^[a-z]+-[a-z]+[0-9]-[a-z]$", zone):
            return google_error(400, "invalid", "Invalid value for field 'zone': '%s'. Unknown zone." % zone)
        if kind == "machineTypes" and len(rest) == 1 and req.method == "GET":
            shape = MACHINE_TYPES.get(rest[0])
            if shape is None:
                return google_error(404, "notFound", "The resource 'projects/%s/zones/%s/machineTypes/%s' was not "
                                    "found" % (project, zone, rest[0]))
            body = {"kind": "compute#machineType", "name": rest[0], "guestCpus": shape[0], "memoryMb": shape[1]}
            if shape[2]:
                body["accelerators"] = [{"guestAcceleratorType": "nvidia-h100-80gb", "guestAcceleratorCount": shape[2]}]
            return fakecloud.Reply(200, json.dumps(body))
        if kind == "operations" and rest:
            return self.poll_operation(zone, rest[0])
        if kind == "instances":
            if not rest and req.method == "POST":
                return self.insert(req, project, zone, query)
            if not rest and req.method == "GET":
                return self.list(zone, query)
            if len(rest) == 1 and req.method == "GET":
                with self.lock:
                    inst = self.instances_by_key.get((zone, rest[0]))
                    if inst is None:
                        return self.instance_not_found(project, zone, rest[0])
                    self.observe(inst)
                    return fakecloud.Reply(200, json.dumps(self.public(inst)))
            if len(rest) == 1 and req.method == "DELETE":
                return self.delete(project, zone, rest[0], query)
        return google_error(404, "notFound", "Not Found")

    def images(self):
        out = {}
        for item in self.args.images.split(","):
            name, _, gb = item.partition("=")
            out[name] = int(gb or 10)
        return out

    def instance_not_found(self, project, zone, name):
        return google_error(404, "notFound", "The resource 'projects/%s/zones/%s/instances/%s' was not found"
                            % (project, zone, name))

    def new_operation(self, zone, op_type, target, on_done, request_id=None):
        name = "operation-%d-%s" % (int(time.time() * 1000), uuid.uuid4().hex[:12])
        base = "https://compute.googleapis.com/compute/v1/projects/%s/zones/%s" % (self.args.project, zone)
        op = {"kind": "compute#operation", "id": str(self.take_id()), "name": name, "zone": base,
              "operationType": op_type, "targetLink": base + "/instances/" + target, "status": "PENDING",
              "progress": 0, "selfLink": base + "/operations/" + name}
        self.operations[name] = {"op": op, "polls": 0, "on_done": on_done}
        if request_id:
            self.request_ids[request_id] = name
        return op

    def take_id(self):
        self.next_id += 1
        return self.next_id

    def poll_operation(self, zone, name):
        with self.lock:
            entry = self.operations.get(name)
            if entry is None or not entry["op"]["zone"].endswith("/" + zone):
                return google_error(404, "notFound", "The resource 'projects/%s/zones/%s/operations/%s' was not found"
                                    % (self.args.project, zone, name))
            op = entry["op"]
            if op["status"] != "DONE":
                entry["polls"] += 1
                if entry["polls"] >= self.args.op_polls:
                    op["status"], op["progress"] = "DONE", 100
                    entry["on_done"](op)
                else:
                    op["status"] = "RUNNING"
            return fakecloud.Reply(200, json.dumps(op))

    def observe(self, inst):
        """An observed instance moves on: STAGING -> RUNNING after --boot-polls looks."""
        if inst["status"] != "STAGING":
            return
        if self.config.get("stuck") and re.search(self.config["stuck"], inst["name"]):
            return
        inst["_looks"] += 1
        # A boot takes --boot-seconds from the insert, however often it is watched.
        if inst["_looks"] >= self.args.boot_polls and time.monotonic() >= inst["_ready_at"]:
            inst["status"] = "RUNNING"
            items = {i["key"]: i["value"] for i in inst["metadata"]["items"]}
            self.runner_queue.append(("start", inst["networkInterfaces"][0]["networkIP"],
                                      base64.b64decode(items.get("user-data", ""))))

    def public(self, inst):
        return {k: v for k, v in inst.items() if not k.startswith("_")}

    # --- insert ---------------------------------------------------------------------------------
    def insert(self, req, project, zone, query):
        request_id = query.get("requestId")
        if request_id is not None and (not UUID_RE.match(request_id) or request_id.strip("0-") == ""):
            raise BadRequest("Invalid value for field 'requestId': '%s'. The requestId must be a valid UUID." % request_id)
        with self.lock:
            if request_id in self.request_ids:
                return fakecloud.Reply(200, json.dumps(self.operations[self.request_ids[request_id]]["op"]))
        try:
            body = json.loads(req.body)
        except ValueError:
            raise BadRequest("Invalid JSON payload received.")
        mtype, gpus = self.validate_instance(body, project, zone)
        name = body["name"]
        with self.lock:
            if (zone, name) in self.instances_by_key:
                return google_error(409, "alreadyExists", "The resource 'projects/%s/zones/%s/instances/%s' already "
                                    "exists" % (project, zone, name))
            if zone + "/" + mtype in self.config.get("exhausted", []):
                def refuse(op):
                    op["error"] = {"errors": [{"code": "ZONE_RESOURCE_POOL_EXHAUSTED", "message":
                                               "The zone '%s' does not have enough resources available to fulfill "
                                               "the request. Try a different zone, or try again later." % op["zone"]}]}
                    op["httpErrorStatusCode"], op["httpErrorMessage"] = 503, "SERVICE UNAVAILABLE"
                op = self.new_operation(zone, "insert", name, refuse, request_id)
                return fakecloud.Reply(200, json.dumps(op))
            base = "https://compute.googleapis.com/compute/v1/projects/%s/zones/%s" % (project, zone)
            inst = dict(body)
            inst.update({"kind": "compute#instance", "id": str(self.take_id()), "zone": base, "status": "PROVISIONING",
                         "machineType": base + "/machineTypes/" + mtype, "selfLink": base + "/instances/" + name,
                         "_looks": 0, "_ready_at": time.monotonic() + self.args.boot_seconds})
            inst["networkInterfaces"] = [dict(body["networkInterfaces"][0], networkIP=self.new_ip(), name="nic0")]
            if "accessConfigs" in body["networkInterfaces"][0]:
                inst["networkInterfaces"][0]["accessConfigs"] = [
                    dict(body["networkInterfaces"][0]["accessConfigs"][0], natIP="127.9.%d.%d" % (
                        self.next_id % 250, 1 + self.next_id % 200))]
            self.instances_by_key[(zone, name)] = inst

            def started(op):
                if inst.get("status") == "PROVISIONING":
                    inst["status"] = "STAGING"
            op = self.new_operation(zone, "insert", name, started, request_id)
            return fakecloud.Reply(200, json.dumps(op))

    def validate_instance(self, body, project, zone):
        if not isinstance(body, dict):
            raise BadRequest("Invalid JSON payload received.")
        if self.model:
            errors = []
            self.model[0].check(self.model[1], "Instance", body, "resource", errors)
            if errors:
                raise BadRequest("Invalid JSON payload received. " + errors[0])
        unknown = set(body) - INSTANCE_FIELDS
        if unknown:
            raise BadRequest("Invalid JSON payload received. Unknown name \"%s\" at 'resource'." % sorted(unknown)[0])
        name = body.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise BadRequest("Invalid value for field 'resource.name': '%s'. Must be a match of regex "
                             "'(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'" % name)
        m = re.match(r"^zones/([^/]+)/machineTypes/([a-z0-9-]+)$", str(body.get("machineType", "")))
        if not m or m.group(1) != zone:
            raise BadRequest("Invalid value for field 'resource.machineType': '%s'." % body.get("machineType"))
        mtype = m.group(2)
        if mtype not in MACHINE_TYPES:
            raise BadRequest("Invalid value for field 'resource.machineType': '%s'. Machine type with name '%s' does "
                             "not exist in zone '%s'." % (body["machineType"], mtype, zone))
        gpus = MACHINE_TYPES[mtype][2]
        disks = body.get("disks")
        if not isinstance(disks, list) or len(disks) != 1:
            raise BadRequest("Invalid value for field 'resource.disks': exactly one boot disk expected")
        d = disks[0]
        if d.get("boot") is not True or d.get("autoDelete") is not True or d.get("type") != "PERSISTENT":
            raise BadRequest("Invalid value for field 'resource.disks[0]': boot, autoDelete and PERSISTENT expected")
        init = d.get("initializeParams") or {}
        im = re.match(r"^(?:https://www\.googleapis\.com/compute/v1/)?/?projects/([^/]+)/global/images/([^/]+)$",
                      str(init.get("sourceImage", "")))
        if not im:
            raise BadRequest("Invalid value for field 'resource.disks[0].initializeParams.sourceImage': '%s'."
                             % init.get("sourceImage"))
        image_gb = self.images().get(im.group(2)) if im.group(1) == project else None
        if image_gb is None:
            raise NotFoundError("The resource '%s' was not found" % init["sourceImage"])
        dt = re.match(r"^zones/([^/]+)/diskTypes/([a-z-]+)$", str(init.get("diskType", "")))
        if not dt or dt.group(1) != zone or dt.group(2) not in DISK_TYPES:
            raise BadRequest("Invalid value for field 'resource.disks[0].initializeParams.diskType': '%s'."
                             % init.get("diskType"))
        size = init.get("diskSizeGb")
        if size is not None and (not str(size).isdigit() or int(size) < image_gb):
            raise BadRequest("Invalid value for field 'resource.disks[0].initializeParams.diskSizeGb': '%s'. "
                             "Requested disk size cannot be smaller than the image size (%d GB)" % (size, image_gb))
        nics = body.get("networkInterfaces")
        if not isinstance(nics, list) or len(nics) != 1 or not nics[0].get("network"):
            raise BadRequest("Invalid value for field 'resource.networkInterfaces': one interface with a network")
        for ac in nics[0].get("accessConfigs", []):
            if ac.get("type") != "ONE_TO_ONE_NAT" or ac.get("networkTier") not in ("STANDARD", "PREMIUM"):
                raise BadRequest("Invalid value for field 'resource.networkInterfaces[0].accessConfigs'")
        self.validate_metadata(body.get("metadata"))
        labels = body.get("labels", {})
        if not isinstance(labels, dict) or len(labels) > 64:
            raise BadRequest("Invalid value for field 'resource.labels'")
        for k, v in labels.items():
            if not LABEL_KEY_RE.match(k) or not isinstance(v, str) or not LABEL_VALUE_RE.match(v):
                raise BadRequest("Invalid value for field 'resource.labels': '%s'. Label keys and values must "
                                 "conform to the label rules." % k)
        cic = body.get("confidentialInstanceConfig")
        maintenance = (body.get("scheduling") or {}).get("onHostMaintenance")
        if cic is not None:
            kind = cic.get("confidentialInstanceType")
            if cic.get("enableConfidentialCompute") is not True or kind not in ("SEV", "SEV_SNP", "TDX"):
                raise BadRequest("Invalid value for field 'resource.confidentialInstanceConfig'")
            series = mtype.split("-")[0]
            allowed = {"SEV": ("n2d", "c2d", "c3d"), "SEV_SNP": ("n2d",), "TDX": ("c3", "a3")}[kind]
            if series not in allowed:
                raise BadRequest("Confidential instance type %s is not supported for machine type %s." % (kind, mtype))
            if kind in ("SEV_SNP", "TDX") and maintenance != "TERMINATE":
                raise BadRequest("Instances with confidential instance type %s must have onHostMaintenance set to "
                                 "TERMINATE." % kind)
            if kind == "SEV_SNP" and body.get("minCpuPlatform") != "AMD Milan":
                raise BadRequest("SEV_SNP instances need minCpuPlatform 'AMD Milan'.")
        if gpus and maintenance != "TERMINATE":
            raise BadRequest("Instances with guest accelerators do not support live migration.")
        if maintenance not in (None, "TERMINATE", "MIGRATE"):
            raise BadRequest("Invalid value for field 'resource.scheduling.onHostMaintenance': '%s'." % maintenance)
        return mtype, gpus

    def validate_metadata(self, metadata):
        if metadata is None:
            return
        items = metadata.get("items", [])
        keys = set()
        total = 0
        for item in items:
            key, value = item.get("key"), item.get("value")
            if not isinstance(key, str) or not META_KEY_RE.match(key) or key in keys or not isinstance(value, str):
                raise BadRequest("Invalid value for field 'resource.metadata': '%s'." % key)
            keys.add(key)
            total += len(key) + len(value)
        if total > 512 * 1024:
            raise BadRequest("Metadata total size exceeds 512 KB.")
        values = {i["key"]: i["value"] for i in items}
        if "user-data" in values:
            if values.get("user-data-encoding") != "base64":
                raise BadRequest("user-data without user-data-encoding=base64")
            try:
                base64.b64decode(values["user-data"], validate=True)
            except ValueError:
                raise BadRequest("user-data is not base64")

    # --- list, delete ---------------------------------------------------------------------------
    def list(self, zone, query):
        try:
            match = parse_filter(query.get("filter", ""))
        except ValueError as e:
            raise BadRequest("Invalid value for field 'filter': '%s'. %s" % (query.get("filter"), e))
        limit = min(int(query.get("maxResults") or 500), 500, int(self.config.get("page_size") or 500))
        start = int(query.get("pageToken") or 0) if (query.get("pageToken") or "0").isdigit() else -1
        if start < 0:
            raise BadRequest("Invalid value for field 'pageToken'")
        with self.lock:
            hits = sorted((i for (z, _), i in self.instances_by_key.items() if z == zone and match(i)),
                          key=lambda i: i["name"])
            page = hits[start:start + limit]
            for inst in page:
                self.observe(inst)
            body = {"kind": "compute#instanceList", "id": "projects/%s/zones/%s/instances" % (self.args.project, zone)}
            if page:
                body["items"] = [self.public(i) for i in page]
            if start + limit < len(hits):
                body["nextPageToken"] = str(start + limit)
            return fakecloud.Reply(200, json.dumps(body))

    def delete(self, project, zone, name, query):
        request_id = query.get("requestId")
        with self.lock:
            if request_id in self.request_ids:
                return fakecloud.Reply(200, json.dumps(self.operations[self.request_ids[request_id]]["op"]))
            inst = self.instances_by_key.get((zone, name))
            if inst is None:
                return self.instance_not_found(project, zone, name)
            inst["status"] = "STOPPING"

            def gone(op):
                if self.instances_by_key.get((zone, name)) is inst:
                    del self.instances_by_key[(zone, name)]
                    self.runner_queue.append(("stop", inst["networkInterfaces"][0]["networkIP"], None))
            op = self.new_operation(zone, "delete", name, gone, request_id)
            return fakecloud.Reply(200, json.dumps(op))


class NotFoundError(BadRequest):
    pass


def parse_filter(text):
    """The subset of the list filter syntax we send: `(field = "v") OR (...)` / AND, field is name or
    labels.<key>; returns a predicate over an instance."""
    text = text.strip()
    if not text:
        return lambda inst: True
    term = r'\(?\s*([a-zA-Z0-9_.-]+)\s*=\s*"([^"]*)"\s*\)?'
    pieces = re.split(r"\s+(AND|OR)\s+", text)
    terms, ops = pieces[0::2], pieces[1::2]
    if len(set(ops)) > 1:
        raise ValueError("mixing AND and OR is not supported by this fake")
    preds = []
    for t in terms:
        m = re.fullmatch(term, t.strip())
        if not m:
            raise ValueError("cannot parse %r" % t)
        field, value = m.group(1), m.group(2)
        if field == "name":
            preds.append(lambda inst, v=value: inst["name"] == v)
        elif field.startswith("labels."):
            preds.append(lambda inst, k=field[7:], v=value: inst.get("labels", {}).get(k) == v)
        else:
            raise ValueError("unsupported field %s" % field)
    if ops and ops[0] == "OR":
        return lambda inst: any(p(inst) for p in preds)
    return lambda inst: all(p(inst) for p in preds)


def write_key(cloud, path):
    """--write-key: a service-account key of our own, its private half as a key file whose token_uri
    is this fake (for an end-to-end test's GCP_CREDENTIALS), its public half what /token checks."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cloud.sa_key = key.public_key()
    port_wait = time.monotonic() + 30
    while not os.path.exists(cloud.args.port_file) and time.monotonic() < port_wait:
        time.sleep(0.02)
    with open(cloud.args.port_file) as f:
        port = int(f.read())
    scheme = "https" if cloud.args.tls_dir else "http"
    doc = {"type": "service_account", "project_id": cloud.args.project, "private_key_id": "fake-key-1",
           "private_key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode(),
           "client_email": cloud.args.sa_email, "client_id": "1",
           "token_uri": "%s://127.0.0.1:%d/token" % (scheme, port)}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


if __name__ == "__main__":
    p = fakecloud.arg_parser("Compute Engine fake")
    p.add_argument("--project", default="test-project")
    p.add_argument("--sa-email", default="podvm-maker@test-project.iam.gserviceaccount.com",
                   help="the service account the test key belongs to")
    p.add_argument("--sa-public-key", help="PEM public key of the test service-account key")
    p.add_argument("--write-key", help="make a key and write it here as a service-account key file (JSON) whose "
                   "token_uri is this fake; written once the fake listens")
    p.add_argument("--token-expires-in", type=int, default=3600)
    p.add_argument("--op-polls", type=int, default=2, help="operation polls until DONE")
    p.add_argument("--boot-polls", type=int, default=2, help="observations of a STAGING instance until RUNNING")
    p.add_argument("--boot-seconds", type=float, default=0, help="and at least this long after the insert")
    p.add_argument("--images", default="podvm-image=10", help="name=GB,... images in the project")
    p.add_argument("--model", help="tests/providers/gcp/testdata/compute_v1_subset.proto: check insert bodies "
                   "against Google's model of the API too")
    args = p.parse_args()
    if not args.sa_public_key and not args.write_key:
        p.error("give --sa-public-key or --write-key")
    cloud = GceCloud(args)
    if args.write_key:
        import threading
        threading.Thread(target=write_key, args=(cloud, args.write_key), daemon=True).start()
    fakecloud.serve(cloud)
