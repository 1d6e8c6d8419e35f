package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// providerConfig is what cloude2e needs to know of one provider: its fake, the adaptor's flags and
// environment pointing at it (CAA's names, the endpoint overrides, the fake's CA bundle), and how to
// make the fake run out of capacity for every allowed type.
type providerConfig struct {
	fake     string
	fakeArgs func(e *env) []string
	env      func(e *env) map[string]string
	args     func(e *env) []string
	// A control call that leaves no capacity for any allowed type, and the one that undoes it.
	noCapacity struct{ path, set, reset string }
	triedTypes []string // every type the StartVM error must name
	// Checks the live instances the fake reports after a StartVM (confidential, as configured).
	checkInstance func(instances []map[string]any) error
}

var configs = map[string]providerConfig{}

func init() {
	configs["aws"] = awsConfig()
	configs["azure"] = azureConfig()
	configs["gcp"] = gcpConfig()
}

func gcpConfig() providerConfig {
	var c providerConfig
	c.fake = "gce_fake.py"
	c.fakeArgs = func(e *env) []string {
		return []string{"--write-key", filepath.Join(e.dir, "gcp-key.json"), "--op-polls", "1", "--boot-polls", "1"}
	}
	c.env = func(e *env) map[string]string {
		key := filepath.Join(e.dir, "gcp-key.json")
		// The fake writes its service-account key file once it listens.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(key); err == nil {
				break
			}
		}
		return map[string]string{
			"GCP_CREDENTIALS":       key,
			"GCP_PROJECT_ID":        "test-project",
			"GCP_ZONE":              "us-central1-a",
			"GCP_NETWORK":           "default",
			"PODVM_IMAGE_NAME":      "podvm-image",
			"GCP_CONFIDENTIAL_TYPE": "SEV_SNP",
			"GCP_MACHINE_TYPE":      "n2d-standard-2",
			"GCP_INSTANCE_TYPES":    "n2d-standard-2,n2d-standard-4",
			"GCP_COMPUTE_ENDPOINT":  e.fakeURL + "/compute/v1",
			"GCP_CA_BUNDLE":         e.ca,
			"GCP_POLL_INTERVAL":     "250ms",
		}
	}
	c.args = func(e *env) []string { return nil }
	c.noCapacity.path = "/_gce/config"
	c.noCapacity.set = `{"exhausted": ["us-central1-a/n2d-standard-2", "us-central1-a/n2d-standard-4"]}`
	c.noCapacity.reset = `{"exhausted": []}`
	c.triedTypes = []string{"n2d-standard-2", "n2d-standard-4"}
	c.checkInstance = func(instances []map[string]any) error {
		for _, inst := range instances {
			if inst["machine_type"] != "n2d-standard-2" || inst["confidential"] != "SEV_SNP" {
				return fmt.Errorf("instance %v: want n2d-standard-2 with SEV_SNP", inst)
			}
		}
		return nil
	}
	return c
}

// ec2Error is EC2's XML error envelope.
func ec2Error(code, message string) string {
	return `<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>` + code +
		`</Code><Message>` + message + `</Message></Error></Errors><RequestID>fake</RequestID></Response>`
}

func awsConfig() providerConfig {
	var c providerConfig
	c.fake = "ec2_fake.py"
	c.fakeArgs = func(e *env) []string { return []string{"--run-delay-ms", "300"} }
	c.env = func(e *env) map[string]string {
		return map[string]string{
			"AWS_ACCESS_KEY_ID":         "AKIDFAKEEXAMPLE",
			"AWS_SECRET_ACCESS_KEY":     "fake/secret/key+for/tests",
			"AWS_REGION":                "us-east-1",
			"AWS_ENDPOINT_URL":          e.fakeURL,
			"AWS_CA_BUNDLE":             e.ca,
			"AWS_EC2_METADATA_DISABLED": "true",
			"PODVM_AMI_ID":              "ami-0123456789abcdef0",
			"AWS_SUBNET_ID":             "subnet-0feedfacefeedface",
			"AWS_SG_IDS":                "sg-0aaaaaaaaaaaaaaaa",
			"PODVM_INSTANCE_TYPE":       "m6a.large",
			"PODVM_INSTANCE_TYPES":      "m6a.large,m6a.xlarge",
			"AWS_POLL_INTERVAL":         "250ms",
		}
	}
	c.args = func(e *env) []string { return nil }
	c.noCapacity.path = "/_fake/faults"
	c.noCapacity.set = `[{"action": "RunInstances", "count": 1000, "status": 500, "headers": {"Content-Type": "text/xml"}, "body": "` +
		ec2Error("InsufficientInstanceCapacity", "We currently do not have sufficient capacity in the Availability Zone you requested.") + `"}]`
	c.noCapacity.reset = `[]`
	c.triedTypes = []string{"m6a.large", "m6a.xlarge"}
	c.checkInstance = func(instances []map[string]any) error {
		for _, inst := range instances {
			params, _ := inst["params"].(map[string]any)
			if inst["type"] != "m6a.large" || params["CpuOptions.AmdSevSnp"] != "enabled" ||
				params["MetadataOptions.HttpTokens"] != "required" {
				return fmt.Errorf("instance %v %v: want m6a.large with SEV-SNP and IMDSv2 only", inst["id"], params)
			}
		}
		return nil
	}
	return c
}

const azureSub = "00000000-0000-0000-0000-000000000001"

func azureConfig() providerConfig {
	var c providerConfig
	c.fake = "arm_fake.py"
	c.fakeArgs = func(e *env) []string { return []string{"--provision-polls", "2", "--delete-polls", "1"} }
	c.env = func(e *env) map[string]string {
		return map[string]string{
			"AZURE_CLIENT_ID":                 "fake-client",
			"AZURE_CLIENT_SECRET":             "fake-secret",
			"AZURE_TENANT_ID":                 "fake-tenant",
			"AZURE_SUBSCRIPTION_ID":           azureSub,
			"AZURE_REGION":                    "eastus",
			"AZURE_RESOURCE_GROUP":            "peerpods-rg",
			"AZURE_SUBNET_ID":                 "/subscriptions/" + azureSub + "/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/pods",
			"AZURE_IMAGE_ID":                  "/subscriptions/" + azureSub + "/resourceGroups/images-rg/providers/Microsoft.Compute/galleries/g/images/podvm/versions/1.0.0",
			"AZURE_INSTANCE_SIZE":             "Standard_DC2as_v5",
			"AZURE_INSTANCE_SIZES":            "Standard_DC2as_v5,Standard_DC4as_v5",
			"AZURE_RESOURCE_MANAGER_ENDPOINT": e.fakeURL,
			"AZURE_RESOURCE_MANAGER_AUDIENCE": "https://management.fake.test",
			"AZURE_AUTHORITY_HOST":            e.fakeURL,
			"AZURE_CA_BUNDLE":                 e.ca,
			"AZURE_POLL_INTERVAL":             "250ms",
		}
	}
	c.args = func(e *env) []string { return nil } // no SSH key: a throwaway one, as CAA makes
	c.noCapacity.path = "/_fake/arm"
	c.noCapacity.set = `{"fail_sizes": {"Standard_DC2as_v5": "SkuNotAvailable", "Standard_DC4as_v5": "AllocationFailed"}}`
	c.noCapacity.reset = `{"fail_sizes": {}}`
	c.triedTypes = []string{"Standard_DC2as_v5", "Standard_DC4as_v5"}
	c.checkInstance = func(instances []map[string]any) error {
		for _, inst := range instances {
			if inst["size"] != "Standard_DC2as_v5" {
				return fmt.Errorf("instance %v: want the smallest allowed size Standard_DC2as_v5", inst)
			}
		}
		return nil
	}
	return c
}
