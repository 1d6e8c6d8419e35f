"""Test-only stand-in for Azure Resource Manager (Microsoft.Compute virtual machines, Microsoft.Network
interfaces, managed disks), the Microsoft Entra ID v2 token endpoint and the IMDS managed-identity
endpoint, on loopback. Never a cloud: tests point the azure provider's endpoints here.

What it enforces, as the real services do:
  - tokens: client credentials (client_id + client_secret), a federated client assertion (must equal
    the current contents of --assertion-file, which tests rotate), IMDS (header Metadata: true);
    each answer is an opaque bearer token with a lifetime (--token-ttl);
  - every ARM call carries a bearer token the fake issued and that has not expired (else 401);
  - PUT virtualMachines/{name}: the body is deserialized with the Azure SDK's own compute models
    (Debian python3-azure, azure.mgmt.compute v2022_08_01, the newest in the package; the provider
    sends api-version 2022-11-01, whose VM schema adds nothing the checks use) through the SDK's
    msrest Deserializer, and the fields we mean are checked on the model: ConfidentialVM, vTPM,
    secure boot as expected, OS disk VMGuestStateOnly, deleteOption Delete on the OS disk, NIC and
    public IP, userData base64 <= 64 KiB, owner tags, vmSize. A violation is 400 FakeModelViolation;
  - 201 with Azure-AsyncOperation + Location + Retry-After; the operation answers InProgress for
    --provision-polls observations (an operation poll, a GET of the VM, or a list that shows it),
    then Succeeded, or Failed with the code scripted for that size or VM;
  - the NIC and OS disk exist from the PUT on and go with the VM (deleteOption Delete); a NIC or
    disk still attached cannot be deleted; DELETE is a long-running operation too (the NIC's with
    Location only, the disk's and VM's with Azure-AsyncOperation);
  - GET virtualMachines pages with nextLink ($skiptoken), --page-size per page;
  - ARM error bodies {"error": {"code", "message"}}; throttling is 429 with Retry-After.

Test control (POST /_fake/arm, JSON, each key optional):
  {"fail_sizes": {"Standard_X": "SkuNotAvailable" | "AllocationFailed" | ...},
   "fail_vms": {"<vm name>": "<code>"}, "provision_polls": n, "delete_polls": n,
   "expire_tokens": true, "token_ttl": s, "hold_vms": ["<vm name>"] (their create never ends),
   "put_errors_after_create": n (the next n creating PUTs answer 502 after creating the VM),
   "orphans": [{"kind": "nic"|"disk", "name": "...", "tags": {...}}]}
GET /_fake/stats adds "vms", "nics", "disks", "public_ips", "tokens_issued", "violations", "bodies".
"""

import base64
import json
import os
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakecloud  # noqa: E402
from fakecloud import Reply  # noqa: E402

from azure.mgmt.compute._serialization import Serializer  # noqa: E402
from azure.mgmt.compute.v2022_08_01 import models as compute_models  # noqa: E402

SERIALIZER = Serializer({k: v for k, v in vars(compute_models).items() if isinstance(v, type)})

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def arm_error(status, code, message, headers=None):
    return Reply(status, json.dumps({"error": {"code": code, "message": message}}), headers)


class ModelViolation(Exception):
    pass


def required_missing(model, path):
    """Members the SDK's model metadata (_validation) marks required that are absent, recursively."""
    missing = []
    for attr, rules in getattr(model, "_validation", {}).items():
        if rules.get("required") and getattr(model, attr, None) is None:
            missing.append("%s.%s is required" % (path, attr))
    for attr in getattr(model, "_attribute_map", {}):
        value = getattr(model, attr, None)
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if hasattr(item, "_attribute_map"):
                missing += required_missing(item, "%s.%s%s" % (path, attr, "[%d]" % i if isinstance(value, list) else ""))
    return missing


def check_vm_model(body, args):
    """Deserializes `body` with the SDK's VirtualMachine model and checks what the provider means."""
    try:
        vm = compute_models.VirtualMachine.deserialize(body)
    except Exception as e:  # the SDK's DeserializationError and anything a bad shape raises
        raise ModelViolation("the compute model cannot deserialize the body: %s" % e)
    problems = required_missing(vm, "VirtualMachine")
    try:  # and it serializes back the way the SDK would send it
        SERIALIZER.body(vm, "VirtualMachine")
    except Exception as e:
        problems.append("the compute model refuses to serialize it: %s" % e)

    def need(cond, what):
        if not cond:
            problems.append(what)

    need(vm.location == args.location, "location %r, want %r" % (vm.location, args.location))
    need(vm.hardware_profile and vm.hardware_profile.vm_size, "no hardwareProfile.vmSize")
    tags = vm.tags or {}
    need(tags.get("peerpods.node") and tags.get("peerpods.sandbox"), "owner tags missing: %r" % sorted(tags))
    ud = vm.user_data or ""
    need(ud, "no userData")
    need(len(ud) <= 64 * 1024, "userData longer than 64 KiB")
    try:
        base64.b64decode(ud, validate=True)
    except Exception:
        problems.append("userData is not base64")
    sp = vm.storage_profile
    need(sp and sp.image_reference and (sp.image_reference.id or sp.image_reference.community_gallery_image_id),
         "no imageReference id")
    os_disk = sp.os_disk if sp else None
    need(os_disk and os_disk.create_option == "FromImage", "osDisk.createOption is not FromImage")
    need(os_disk and os_disk.delete_option == "Delete", "osDisk.deleteOption is not Delete")
    security = vm.security_profile
    if security is None:
        need(args.allow_plain, "no securityProfile (a confidential VM was expected)")
        need(not (os_disk and os_disk.managed_disk and os_disk.managed_disk.security_profile),
             "a plain VM with a confidential OS disk")
    else:
        need(security.security_type == "ConfidentialVM", "securityType %r" % security.security_type)
        uefi = security.uefi_settings
        need(uefi and uefi.v_tpm_enabled is True, "vTPM not enabled")
        need(uefi and uefi.secure_boot_enabled is args.secure_boot,
             "secureBootEnabled %r, want %r" % (uefi and uefi.secure_boot_enabled, args.secure_boot))
        md = os_disk.managed_disk if os_disk else None
        need(md and md.security_profile and md.security_profile.security_encryption_type == "VMGuestStateOnly",
             "OS disk securityEncryptionType is not VMGuestStateOnly")
    os_profile = vm.os_profile
    need(os_profile and os_profile.admin_username, "no adminUsername")
    lc = os_profile.linux_configuration if os_profile else None
    need(lc and lc.ssh and lc.ssh.public_keys and lc.ssh.public_keys[0].key_data, "no SSH public key")
    nics = (vm.network_profile.network_interface_configurations or []) if vm.network_profile else []
    need(len(nics) == 1, "want one networkInterfaceConfiguration, got %d" % len(nics))
    for nic in nics:
        need(nic.delete_option == "Delete", "NIC %s deleteOption is not Delete" % nic.name)
        for ipc in nic.ip_configurations or []:
            need(ipc.subnet and ipc.subnet.id, "NIC ip configuration without a subnet")
            pub = ipc.public_ip_address_configuration
            need(pub is None or pub.delete_option == "Delete", "public IP deleteOption is not Delete")
    if problems:
        raise ModelViolation("; ".join(problems))
    return vm


class Arm(fakecloud.Cloud):
    def __init__(self, args):
        super().__init__(args)
        self.tokens = {}  # token -> expiry (epoch seconds)
        self.token_ttl = args.token_ttl
        self.tokens_issued = {"client_secret": 0, "assertion": 0, "imds": 0}
        self.vms = {}  # name -> dict
        self.nics = {}
        self.disks = {}
        self.public_ips = {}
        self.ops = {}  # id -> {"kind", "vm"|"resource", "polls", "status", "error"}
        self.fail_sizes = {}
        self.fail_vms = {}
        self.hold_vms = set()
        self.put_errors_after_create = 0
        self.provision_polls = args.provision_polls
        self.delete_polls = args.delete_polls
        self.violations = 0
        self.bodies = {}
        self.images = set(i.lower() for i in args.images.split(",") if i)
        self.sub = args.subscription.lower()
        self.rg = args.resource_group.lower()

    # --- naming ---------------------------------------------------------------------------------
    def rg_id(self):
        return "/subscriptions/%s/resourceGroups/%s" % (self.args.subscription, self.args.resource_group)

    def vm_id(self, name):
        return self.rg_id() + "/providers/Microsoft.Compute/virtualMachines/" + name

    def nic_id(self, name):
        return self.rg_id() + "/providers/Microsoft.Network/networkInterfaces/" + name

    def pip_id(self, name):
        return self.rg_id() + "/providers/Microsoft.Network/publicIPAddresses/" + name

    def disk_id(self, name):
        return self.rg_id() + "/providers/Microsoft.Compute/disks/" + name

    def op_urls(self, req, op_id):
        base = "https://%s/subscriptions/%s/providers/Microsoft.Compute/locations/%s" % (
            req.headers.get("Host"), self.args.subscription, self.args.location)
        return (base + "/operations/%s?api-version=2022-11-01" % op_id,
                base + "/operationresults/%s?api-version=2022-11-01" % op_id)

    # --- routing --------------------------------------------------------------------------------
    def split(self, req):
        parsed = urllib.parse.urlsplit(req.path)
        parts = [urllib.parse.unquote(p) for p in parsed.path.split("/") if p]
        return parts, urllib.parse.parse_qs(parsed.query)

    def action_of(self, req):
        parts, _ = self.split(req)
        low = [p.lower() for p in parts]
        if len(low) >= 3 and low[1] == "oauth2":
            return "POST token"
        if low[:1] == ["metadata"]:
            return "GET imds"
        if "vmsizes" in low:
            return "GET vmSizes"
        if "operations" in low or "operationresults" in low:
            return "GET " + ("operations" if "operations" in low else "operationresults")
        for kind in ("virtualmachines", "networkinterfaces", "disks", "publicipaddresses"):
            if kind in low:
                i = low.index(kind)
                name = {"virtualmachines": "virtualMachines", "networkinterfaces": "networkInterfaces",
                        "disks": "disks", "publicipaddresses": "publicIPAddresses"}[kind]
                if i == len(low) - 1:
                    return "LIST " + name
                return req.method + " " + name
        if len(low) == 4 and low[2] == "resourcegroups":
            return req.method + " resourceGroups"
        return req.method + " other"

    def throttle_reply(self, req):
        return arm_error(429, "TooManyRequests", "The request is being throttled.",
                         {"Retry-After": "1", "x-ms-ratelimit-remaining-subscription-reads": "0"})

    def handle(self, req):
        parts, query = self.split(req)
        low = [p.lower() for p in parts]
        if len(low) == 4 and low[1:] == ["oauth2", "v2.0", "token"] and req.method == "POST":
            return self.token(req, parts[0])
        if low == ["metadata", "identity", "oauth2", "token"] and req.method == "GET":
            return self.imds(req, query)
        refused = self.check_bearer(req)
        if refused:
            return refused
        with self.lock:
            return self.arm(req, parts, low, query)

    # --- tokens ---------------------------------------------------------------------------------
    def issue(self, kind):
        token = "fake-arm-" + uuid.uuid4().hex
        with self.lock:
            self.tokens[token] = time.time() + self.token_ttl
            self.tokens_issued[kind] += 1
            return token, self.token_ttl

    def token(self, req, tenant):
        form = urllib.parse.parse_qs(req.body.decode(), keep_blank_values=True)
        get = lambda k: (form.get(k) or [""])[0]  # noqa: E731
        if tenant != self.args.tenant:
            return Reply(400, json.dumps({"error": "invalid_request", "error_description": "AADSTS90002: tenant"}))
        if get("grant_type") != "client_credentials":
            return Reply(400, json.dumps({"error": "unsupported_grant_type"}))
        if get("scope") != self.args.audience.rstrip("/") + "/.default":
            return Reply(400, json.dumps({"error": "invalid_scope", "error_description": "AADSTS70011"}))
        if get("client_id") != self.args.client_id:
            return Reply(400, json.dumps({"error": "unauthorized_client", "error_description": "AADSTS700016"}))
        if get("client_secret"):
            if get("client_secret") != self.args.client_secret:
                return Reply(401, json.dumps({"error": "invalid_client", "error_description": "AADSTS7000215"}))
            kind = "client_secret"
        elif get("client_assertion_type") == JWT_BEARER and get("client_assertion"):
            want = ""
            if self.args.assertion_file and os.path.exists(self.args.assertion_file):
                with open(self.args.assertion_file) as f:
                    want = f.read().strip()
            if not want or get("client_assertion") != want:
                return Reply(401, json.dumps({"error": "invalid_client", "error_description": "AADSTS700024"}))
            kind = "assertion"
        else:
            return Reply(401, json.dumps({"error": "invalid_client", "error_description": "AADSTS7000216"}))
        token, ttl = self.issue(kind)
        return Reply(200, json.dumps({"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl,
                                      "access_token": token}))

    def imds(self, req, query):
        if req.headers.get("Metadata") != "true":
            return Reply(400, json.dumps({"error": "invalid_request", "error_description": "Required metadata header not specified"}))
        resource = (query.get("resource") or [""])[0]
        if resource.rstrip("/") != self.args.audience.rstrip("/"):
            return Reply(400, json.dumps({"error": "invalid_resource"}))
        client_id = (query.get("client_id") or [""])[0]
        if client_id and client_id != self.args.client_id:
            return Reply(400, json.dumps({"error": "invalid_request", "error_description": "Identity not found"}))
        token, ttl = self.issue("imds")
        now = int(time.time())
        return Reply(200, json.dumps({"access_token": token, "expires_in": str(ttl), "expires_on": str(now + ttl),
                                      "not_before": str(now), "resource": resource, "token_type": "Bearer"}))

    def check_bearer(self, req):
        auth = req.headers.get("Authorization") or ""
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        with self.lock:
            expiry = self.tokens.get(token)
        if expiry is None:
            return arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.",
                             {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if time.time() >= expiry:
            return arm_error(401, "ExpiredAuthenticationToken", "The access token expiry has passed.",
                             {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return None

    # --- ARM ------------------------------------------------------------------------------------
    def arm(self, req, parts, low, query):
        if len(low) < 2 or low[0] != "subscriptions" or low[1] != self.sub:
            return arm_error(404, "SubscriptionNotFound", "The subscription could not be found.")
        if len(low) >= 4 and low[2] == "providers" and low[3] == "microsoft.compute" and len(low) == 8:
            if low[4] == "locations" and low[6] in ("operations", "operationresults"):
                return self.operation(low[6], parts[7])
        if low[2:] == ["providers", "microsoft.compute", "locations", self.args.location.lower(), "vmsizes"]:
            return Reply(200, json.dumps({"value": [
                {"name": "Standard_DC2as_v5", "numberOfCores": 2, "memoryInMB": 8192, "maxDataDiskCount": 4},
                {"name": "Standard_D2s_v5", "numberOfCores": 2, "memoryInMB": 8192, "maxDataDiskCount": 4},
                {"name": "Standard_D4s_v5", "numberOfCores": 4, "memoryInMB": 16384, "maxDataDiskCount": 8}]}))
        if req.method == "GET" and "/" + "/".join(low) in self.images:
            return Reply(200, json.dumps({"id": "/" + "/".join(parts), "name": parts[-1]}))
        if len(low) < 4 or low[2] != "resourcegroups":
            return arm_error(404, "NotFound", "no such route")
        if low[3] != self.rg:
            return arm_error(404, "ResourceGroupNotFound", "Resource group '%s' could not be found." % parts[3])
        if len(low) == 4 and req.method == "GET":
            return Reply(200, json.dumps({"id": self.rg_id(), "name": self.args.resource_group,
                                          "location": self.args.location,
                                          "properties": {"provisioningState": "Succeeded"}}))
        if len(low) < 7 or low[4] != "providers":
            return arm_error(404, "NotFound", "no such route")
        kind = low[6]
        name = parts[7] if len(parts) > 7 else None
        if kind == "virtualmachines":
            if name is None and req.method == "GET":
                return self.list_vms(req, query)
            if req.method == "PUT":
                return self.put_vm(req, name)
            if req.method == "GET":
                return self.get_vm(name)
            if req.method == "DELETE":
                return self.delete_vm(req, name)
        if kind == "networkinterfaces" and name:
            return self.simple(req, self.nics, name, "Microsoft.Network/networkInterfaces", self.nic_body, "location")
        if kind == "disks" and name:
            return self.simple(req, self.disks, name, "Microsoft.Compute/disks", self.disk_body, "async")
        if kind == "publicipaddresses" and name and req.method == "DELETE":
            # As ARM: a public IP still held by a NIC cannot go; deleting a NIC does not delete its IP.
            if any(n.get("pip") == name for n in self.nics.values()):
                return arm_error(400, "PublicIPAddressInUse", "Public IP address %s is in use." % name)
            return Reply(200 if self.public_ips.pop(name, None) is not None else 204, b"", content_type=None)
        if kind == "publicipaddresses" and name and req.method == "GET":
            pip = self.public_ips.get(name)
            if not pip:
                return arm_error(404, "ResourceNotFound", "The Resource '%s' was not found." % name)
            return Reply(200, json.dumps({"id": self.pip_id(name), "name": name,
                                          "properties": {"ipAddress": pip["ip"]}}))
        return arm_error(405, "MethodNotAllowed", "unsupported")

    def new_op(self, kind, target, polls):
        op_id = uuid.uuid4().hex
        self.ops[op_id] = {"kind": kind, "target": target, "polls": polls, "status": "InProgress", "error": None,
                           "ready_at": time.monotonic() + (self.args.provision_seconds if kind == "create" else 0)}
        return op_id

    def lro_headers(self, req, op_id, location=True, async_op=True):
        a, loc = self.op_urls(req, op_id)
        h = {"Retry-After": self.args.retry_after}
        if async_op:
            h["Azure-AsyncOperation"] = a
        if location:
            h["Location"] = loc
        return h

    # One observation of an operation: it moves on, and ends when its polls are used up.
    def tick(self, op_id):
        op = self.ops.get(op_id)
        if not op or op["status"] != "InProgress":
            return
        if op["kind"] == "create" and op["target"] in self.hold_vms:
            return
        op["polls"] -= 1
        if op["polls"] > 0:
            return
        if time.monotonic() < op["ready_at"]:  # a boot takes time, however often it is watched
            op["polls"] = 1
            return
        if op["kind"] == "create":
            vm = self.vms.get(op["target"])
            if vm is None:
                op["status"] = "Canceled"
                return
            code = self.fail_vms.get(vm["name"]) or self.fail_sizes.get(vm["size"])
            if code:
                op["status"] = "Failed"
                op["error"] = {"code": code, "message": "Allocation failed (fake: %s)." % vm["size"]}
                vm["state"] = "Failed"
            else:
                op["status"] = "Succeeded"
                vm["state"] = "Succeeded"
                self.run_instance(vm["ip"], base64.b64decode(vm["user_data"]))
        elif op["kind"] == "delete-vm":
            vm = self.vms.pop(op["target"], None)
            if vm:
                if vm.get("create_op") and self.ops[vm["create_op"]]["status"] == "InProgress":
                    self.ops[vm["create_op"]]["status"] = "Canceled"
                if vm["nic_delete"]:
                    nic = self.nics.pop(vm["nic"], None)
                    if nic and nic.get("pip") and nic.get("pip_delete"):
                        self.public_ips.pop(nic["pip"], None)
                elif vm["nic"] in self.nics:
                    self.nics[vm["nic"]]["vm"] = None
                if vm["disk_delete"]:
                    self.disks.pop(vm["disk"], None)
                elif vm["disk"] in self.disks:
                    self.disks[vm["disk"]]["vm"] = None
                self.stop_instance(vm["ip"])
            op["status"] = "Succeeded"
        else:  # delete of a NIC or disk
            store, name = op["target"]
            store.pop(name, None)
            op["status"] = "Succeeded"

    def operation(self, kind, op_id):
        op = self.ops.get(op_id)
        if not op:
            return arm_error(404, "NotFound", "operation not found")
        self.tick(op_id)
        if kind == "operationresults":  # Location: 202 while running, then 200 (or the error)
            if op["status"] == "InProgress":
                return Reply(202, b"", {"Retry-After": self.args.retry_after})
            if op["status"] == "Failed":
                return Reply(400, json.dumps({"error": op["error"]}))
            return Reply(200, b"{}")
        body = {"name": op_id, "status": op["status"], "startTime": "2026-01-01T00:00:00Z"}
        if op["error"]:
            body["error"] = op["error"]
        return Reply(200, json.dumps(body), {"Retry-After": self.args.retry_after}
                     if op["status"] == "InProgress" else None)

    def put_vm(self, req, name):
        try:
            body = json.loads(req.body)
        except ValueError:
            return arm_error(400, "InvalidRequestContent", "The request content was invalid.")
        try:
            model = check_vm_model(body, self.args)
        except ModelViolation as e:
            self.violations += 1
            return arm_error(400, "FakeModelViolation", str(e))
        self.bodies[name] = body
        size = model.hardware_profile.vm_size
        image = model.storage_profile.image_reference
        image_id = (image.id or image.community_gallery_image_id or "").lower()
        if image_id not in self.images:
            return arm_error(404, "ImageNotFound", "The platform image '%s' is not available." % image_id)
        if self.fail_sizes.get(size) == "SkuNotAvailable":
            return arm_error(409, "SkuNotAvailable", "The requested VM size %s is currently not available in "
                             "location '%s'." % (size, self.args.location))
        if name in self.vms:
            vm = self.vms[name]
            if vm["state"] == "Deleting":
                return arm_error(409, "OperationNotAllowed", "The VM is being deleted.")
            return Reply(200, json.dumps(self.vm_body(vm)))
        nic_conf = model.network_profile.network_interface_configurations[0]
        os_disk = model.storage_profile.os_disk
        disk_name = os_disk.name or name + "_OsDisk"
        ip = self.new_ip()
        nic = {"name": nic_conf.name, "ip": ip, "vm": name, "tags": {}, "pip": None, "pip_delete": False}
        pub = nic_conf.ip_configurations[0].public_ip_address_configuration
        if pub:
            nic["pip"] = pub.name
            nic["pip_delete"] = pub.delete_option == "Delete"
            self.public_ips[pub.name] = {"ip": "127.201.%d.%d" % (len(self.public_ips) // 250, 2 + len(self.public_ips) % 250)}
        self.nics[nic_conf.name] = nic
        self.disks[disk_name] = {"name": disk_name, "vm": name, "tags": {}}
        vm = {"name": name, "size": size, "tags": model.tags or {}, "state": "Creating", "ip": ip,
              "nic": nic_conf.name, "nic_delete": nic_conf.delete_option == "Delete",
              "disk": disk_name, "disk_delete": os_disk.delete_option == "Delete",
              "user_data": model.user_data, "body": body}
        vm["create_op"] = self.new_op("create", name, self.provision_polls)
        self.vms[name] = vm
        if self.put_errors_after_create > 0:  # the work is done, the answer is lost
            self.put_errors_after_create -= 1
            return arm_error(502, "BadGateway", "The gateway did not receive a response in time.")
        return Reply(201, json.dumps(self.vm_body(vm)), self.lro_headers(req, vm["create_op"]))

    def vm_body(self, vm):
        body = json.loads(json.dumps(vm["body"]))
        props = body.setdefault("properties", {})
        props.pop("userData", None)  # ARM returns it only with $expand=userData
        props["provisioningState"] = vm["state"]
        props["vmId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, vm["name"]))
        props.setdefault("networkProfile", {})["networkInterfaces"] = [
            {"id": self.nic_id(vm["nic"]), "properties": {"primary": True, "deleteOption":
                                                          "Delete" if vm["nic_delete"] else "Detach"}}]
        props.setdefault("storageProfile", {}).setdefault("osDisk", {})["managedDisk"] = dict(
            props["storageProfile"]["osDisk"].get("managedDisk", {}), id=self.disk_id(vm["disk"]))
        body.update({"id": self.vm_id(vm["name"]), "name": vm["name"],
                     "type": "Microsoft.Compute/virtualMachines"})
        return body

    def get_vm(self, name):
        vm = self.vms.get(name)
        if not vm:
            return arm_error(404, "ResourceNotFound",
                             "The Resource 'Microsoft.Compute/virtualMachines/%s' was not found." % name)
        if vm.get("create_op"):
            self.tick(vm["create_op"])
        return Reply(200, json.dumps(self.vm_body(vm)))

    def list_vms(self, req, query):
        names = sorted(self.vms)
        for n in names:
            if self.vms[n].get("create_op"):
                self.tick(self.vms[n]["create_op"])
        names = sorted(self.vms)
        start = int((query.get("$skiptoken") or ["0"])[0])
        page = names[start:start + self.args.page_size]
        body = {"value": [self.vm_body(self.vms[n]) for n in page]}
        if start + self.args.page_size < len(names):
            body["nextLink"] = "https://%s%s?api-version=2022-11-01&$skiptoken=%d" % (
                req.headers.get("Host"), self.rg_id() + "/providers/Microsoft.Compute/virtualMachines",
                start + self.args.page_size)
        return Reply(200, json.dumps(body))

    def delete_vm(self, req, name):
        vm = self.vms.get(name)
        if not vm:
            return Reply(204, b"", content_type=None)
        if vm["state"] != "Deleting":
            vm["state"] = "Deleting"
            vm["delete_op"] = self.new_op("delete-vm", name, self.delete_polls)
        return Reply(202, b"", self.lro_headers(req, vm["delete_op"]))

    def nic_body(self, name, nic):
        ipc = {"privateIPAddress": nic["ip"], "privateIPAllocationMethod": "Dynamic"}
        if nic.get("pip"):
            ipc["publicIPAddress"] = {"id": self.pip_id(nic["pip"])}
        props = {"provisioningState": "Succeeded",
                 "ipConfigurations": [{"name": "ip-config", "properties": ipc}]}
        if nic.get("vm"):
            props["virtualMachine"] = {"id": self.vm_id(nic["vm"])}
        return {"id": self.nic_id(name), "name": name, "tags": nic.get("tags", {}), "properties": props}

    def disk_body(self, name, disk):
        props = {"provisioningState": "Succeeded", "diskState": "Attached" if disk.get("vm") else "Unattached"}
        return {"id": self.disk_id(name), "name": name, "tags": disk.get("tags", {}), "properties": props}

    def simple(self, req, store, name, rtype, render, lro_style):
        item = store.get(name)
        if req.method == "GET":
            if not item:
                return arm_error(404, "ResourceNotFound", "The Resource '%s/%s' was not found." % (rtype, name))
            return Reply(200, json.dumps(render(name, item)))
        if req.method == "DELETE":
            if not item:
                return Reply(204, b"", content_type=None)
            if item.get("vm") and item["vm"] in self.vms:
                if store is self.nics:
                    return arm_error(400, "NicInUse", "Network Interface %s is used by a VM." % name)
                return arm_error(409, "OperationNotAllowed", "Disk %s is attached to a VM." % name)
            op_id = self.new_op("delete", (store, name), self.delete_polls)
            return Reply(202, b"", self.lro_headers(req, op_id, location=True, async_op=lro_style == "async"))
        return arm_error(405, "MethodNotAllowed", "unsupported")

    # --- test control and stats -----------------------------------------------------------------
    def control(self, req):
        if req.path != "/_fake/arm" or req.method != "POST":
            return None
        cfg = json.loads(req.body or b"{}")
        with self.lock:
            if "fail_sizes" in cfg:  # replaces the scripted sizes: {} ends every failure
                self.fail_sizes = dict(cfg["fail_sizes"])
            self.fail_vms.update(cfg.get("fail_vms", {}))
            self.hold_vms.update(cfg.get("hold_vms", []))
            for name in cfg.get("release_vms", []):
                self.hold_vms.discard(name)
            self.put_errors_after_create += cfg.get("put_errors_after_create", 0)
            if "provision_polls" in cfg:
                self.provision_polls = cfg["provision_polls"]
            if "delete_polls" in cfg:
                self.delete_polls = cfg["delete_polls"]
            if "token_ttl" in cfg:
                self.token_ttl = cfg["token_ttl"]
            if cfg.get("expire_tokens"):
                for t in self.tokens:
                    self.tokens[t] = 0
            for o in cfg.get("orphans", []):
                store = {"nic": self.nics, "disk": self.disks, "pip": self.public_ips}[o["kind"]]
                store[o["name"]] = {"name": o["name"], "ip": "127.0.0.1", "vm": None, "tags": o.get("tags", {})}
        return Reply(204, b"", content_type=None)

    def instances(self):
        return [{"name": v["name"], "ip": v["ip"], "state": v["state"], "size": v["size"]}
                for v in self.vms.values()]

    def stats(self):
        s = super().stats()
        with self.lock:
            s.update({"vms": sorted(self.vms), "nics": sorted(self.nics), "disks": sorted(self.disks),
                      "public_ips": sorted(self.public_ips), "tokens_issued": dict(self.tokens_issued),
                      "violations": self.violations, "bodies": self.bodies})
        return s


def main():
    p = fakecloud.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--tenant", default="fake-tenant")
    p.add_argument("--client-id", default="fake-client")
    p.add_argument("--client-secret", default="fake-secret")
    p.add_argument("--assertion-file", help="the federated assertion accepted is this file's current content")
    p.add_argument("--audience", default="https://management.fake.test")
    p.add_argument("--token-ttl", type=int, default=3600)
    p.add_argument("--subscription", default="00000000-0000-0000-0000-000000000001")
    p.add_argument("--resource-group", default="peerpods-rg")
    p.add_argument("--location", default="eastus")
    p.add_argument("--images", default="/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/"
                   "images-rg/providers/Microsoft.Compute/galleries/g/images/podvm/versions/1.0.0")
    p.add_argument("--secure-boot", action="store_true", help="expect secureBootEnabled true")
    p.add_argument("--allow-plain", action="store_true", help="accept VMs without a securityProfile")
    p.add_argument("--provision-polls", type=int, default=3)
    p.add_argument("--provision-seconds", type=float, default=0,
                   help="a create is also InProgress until this long after its PUT")
    p.add_argument("--delete-polls", type=int, default=2)
    p.add_argument("--retry-after", default="0")
    p.add_argument("--page-size", type=int, default=3)
    args = p.parse_args()
    fakecloud.serve(Arm(args))


if __name__ == "__main__":
    main()
